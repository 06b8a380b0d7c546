"""MobileNet V1 on ImageNet, with the paper's binarized classifier."""

from bnn_edge.tasks import Paper, Task

TASK = Task(
    name="mobilenet",
    network="bnn_edge.models.mobilenet:mobilenet_net",
    data="bnn_edge.data.imagenet.ImageNetDataModule",
    title="ImageNet top-1",
    options=("hidden",),
    default_classes=1000,
    top5_title="ImageNet top-5",
    paper=Paper(
        data="ImageNet",
        accuracy={"none": {1: 70.6}, "full": {4: 54.4}, "classifier": {1: 70.0}},
        top5={"none": {1: 89.5}, "full": {4: 77.5}, "classifier": {1: 89.1}},
        memory_saving=(20.0, 7.3),
    ),
)

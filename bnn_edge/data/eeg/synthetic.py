"""Offline synthetic motor imagery shaped like EEGMMIDB, from a spherical head model.

Head model (built once per process, about a second): the 64 EEGMMIDB electrodes at their
10-05 positions, a 3-layer MNE sphere model fitted to them, a 10 mm volume source grid
inside it and the EEG forward solution (free orientation) of every grid point.

Every synthetic subject records runs of 125 s at 160 Hz laid out like the real ones (15
cycles of T0 rest 4.2 s, then a T1 (left fist) or T2 (right fist) cue of 4.1 s) with:

- two hand-area dipoles (left and right precentral cortex, under C3 and C4) carrying a mu
  (9-13 Hz) and a beta (18-25 Hz) rhythm, bursty narrow-band noise at the subject's own
  frequencies;
- event-related desynchronisation: while a hand is imagined, the rhythms of the opposite
  hemisphere drop by the subject's ERD depth (the same hemisphere by a quarter of it),
  ramping in 0.3-0.8 s after the cue and recovering after the 4.1 s cue, followed by a
  short beta rebound; a tenth of the trials are lapses without ERD;
- background activity: 200 dipoles at random grid points with random orientations,
  independent pink (1/f) noise, plus occipital alpha with a slowly drifting amplitude,
  eye blinks from a frontal dipole, 60 Hz line noise and white sensor noise.

Subjects differ in dipole position (about 7 mm per axis) and orientation, rhythm
frequencies and strength, ERD depth, background and alpha level; about one in five is a
weak responder whose ERD is a fraction of the others', so some subjects are hard to decode.
:data:`DEFAULT_SETTINGS` is tuned so that the real-weight Table I network reaches roughly
70-90 % on held-out trials with the default 10-epoch trainer (docs/eeg.md has the figures).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from bnn_edge.data.eeg.eegmmidb import CHANNELS, FS, N_SAMPLES, cut_epochs

RUN_SECONDS = 125
CUES_PER_RUN = 15
REST_S, TASK_S = 4.2, 4.1


@dataclass(frozen=True)
class SimulationSettings:
    """Amplitudes in microvolts at the electrode where a source projects most strongly."""

    background_sources: int = 200
    background_uv: float = 12.0  # mean sensor RMS of the pink-noise background
    mu_uv: float = 14.0  # median RMS of a hand-area mu rhythm
    beta_ratio: float = 0.5  # beta RMS relative to mu
    erd_depth: float = 0.7  # typical fractional drop of the contralateral rhythms
    weak_responders: float = 0.2  # fraction of subjects whose ERD is a fifth as deep
    lapse_rate: float = 0.1  # trials without ERD
    alpha_uv: float = 10.0  # median occipital alpha RMS
    blink_rate_hz: float = 0.15
    blink_uv: float = 80.0
    line_uv: float = 1.0
    sensor_noise_uv: float = 2.0

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_SETTINGS = SimulationSettings()


@dataclass(frozen=True)
class HeadModel:
    """Electrodes, sphere, source grid and gain matrix (64, n_sources, 3) in head coordinates."""

    electrodes: np.ndarray  # (64, 3) m
    center: np.ndarray  # (3,) m
    radius: float  # m, scalp
    sources: np.ndarray  # (n, 3) m
    gain: np.ndarray  # (64, n, 3)


def _montage():
    import mne

    names = mne.channels.get_builtin_montages()
    kind = "colin27_1005" if "colin27_1005" in names else "standard_1005"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return mne.channels.make_standard_montage(kind)


@lru_cache(maxsize=1)
def head_model(spacing_mm: float = 10.0) -> HeadModel:
    """Sphere model fitted to the EEGMMIDB electrodes and its forward solution (cached)."""
    import mne

    info = mne.create_info(list(CHANNELS), FS, "eeg")
    info.set_montage(_montage())
    sphere = mne.make_sphere_model("auto", "auto", info, verbose="ERROR")
    src = mne.setup_volume_source_space(sphere=sphere, pos=spacing_mm, verbose="ERROR")
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, eeg=True, meg=False,
                                    verbose="ERROR")
    gain = fwd["sol"]["data"].reshape(len(CHANNELS), -1, 3)
    sources = fwd["src"][0]["rr"][fwd["src"][0]["vertno"]]
    electrodes = np.array([ch["loc"][:3] for ch in info["chs"]])
    return HeadModel(electrodes, np.asarray(sphere["r0"], float), float(sphere.radius),
                     sources, gain)


def pink_noise(rng: np.random.Generator, n: int, length: int, exponent: float = 1.0):
    """``n`` independent unit-RMS noises with power spectrum 1/f^exponent (no DC)."""
    spec = rng.standard_normal((n, length // 2 + 1)) + 1j * rng.standard_normal(
        (n, length // 2 + 1))
    f = np.fft.rfftfreq(length, 1 / FS)
    scale = np.zeros_like(f)
    scale[1:] = np.maximum(f[1:], 0.5) ** (-exponent / 2)
    out = np.fft.irfft(spec * scale, n=length)
    return out / out.std(axis=-1, keepdims=True)


def band_noise(rng: np.random.Generator, n: int, length: int, freq: float, width: float):
    """Unit-RMS narrow-band noise (Gaussian spectral peak at ``freq``, s.d. ``width`` Hz)."""
    spec = rng.standard_normal((n, length // 2 + 1)) + 1j * rng.standard_normal(
        (n, length // 2 + 1))
    f = np.fft.rfftfreq(length, 1 / FS)
    out = np.fft.irfft(spec * np.exp(-0.5 * ((f - freq) / width) ** 2), n=length)
    return out / out.std(axis=-1, keepdims=True)


def _ramp(t: np.ndarray, start: float, rise: float) -> np.ndarray:
    """0 before ``start``, raised-cosine to 1 over ``rise`` seconds."""
    u = np.clip((t - start) / rise, 0, 1)
    return 0.5 - 0.5 * np.cos(np.pi * u)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@dataclass(frozen=True)
class Subject:
    """What makes one synthetic subject itself (drawn from the seed and the subject id)."""

    hand_gain: np.ndarray  # (2, 64): left-hemisphere (right hand), right-hemisphere dipole
    mu_freq: float
    beta_freq: float
    mu_uv: float
    erd_depth: float
    background_gain: np.ndarray  # (64, 64): mixes 64 pink noises into the background
    background_uv: float
    alpha_gain: np.ndarray  # (2, 64)
    alpha_freq: float
    alpha_uv: float
    blink_gain: np.ndarray  # (64,)


def _dipole_gain(head: HeadModel, target: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Sensor pattern of a dipole at the grid point nearest ``target``, peak-normalised."""
    k = int(np.argmin(np.linalg.norm(head.sources - target, axis=1)))
    g = head.gain[:, k] @ _unit(orientation)
    return g / np.abs(g).max()


def draw_subject(head: HeadModel, subject: int, seed: int,
                 settings: SimulationSettings = DEFAULT_SETTINGS) -> Subject:
    """A subject's anatomy and physiology, fixed by (seed, subject) alone."""
    rng = np.random.default_rng([seed, subject, 0])
    c, r = head.center, head.radius
    el = dict(zip(CHANNELS, head.electrodes, strict=True))
    anterior = _unit(el["Fz"] - el["Pz"])
    hands = []
    for name in ("C3", "C4"):  # hand knob, slightly anterior to C3/C4, ~2.5 cm deep
        direction = _unit(el[name] - c + 0.15 * r * anterior)
        target = c + 0.72 * r * direction + rng.normal(0, 0.007, 3)
        radial = _unit(target - c)
        orientation = 0.8 * anterior + 0.6 * radial + rng.normal(0, 0.25, 3)
        hands.append(_dipole_gain(head, target, orientation))
    weak = rng.random() < settings.weak_responders
    depth = settings.erd_depth * rng.uniform(0.6, 1.5) * (0.2 if weak else 1.0)

    idx = rng.choice(len(head.sources), settings.background_sources, replace=False)
    ori = _unit(rng.standard_normal((settings.background_sources, 3)))
    bg = np.einsum("cnk,nk->cn", head.gain[:, idx], ori)
    bg /= np.sqrt((bg ** 2).sum(axis=1).mean())  # unit mean sensor RMS for unit sources
    # bg @ s for n independent Gaussian sources s has covariance bg bg^T; so has u * d @ s'
    # for 64 sources s' (thin SVD bg = u d v^T), which is 3x cheaper to draw
    u, d, _ = np.linalg.svd(bg, full_matrices=False)
    bg = u * d

    alpha = []
    for name in ("O1", "O2"):
        target = c + 0.7 * r * _unit(el[name] - c) + rng.normal(0, 0.007, 3)
        alpha.append(_dipole_gain(head, target, _unit(target - c) + rng.normal(0, 0.3, 3)))
    blink = _dipole_gain(head, c + 0.75 * r * _unit(el["Fpz"] - c) - 0.2 * r * _unit(
        el["Cz"] - c), anterior + 0.5 * _unit(el["Cz"] - c))
    return Subject(
        hand_gain=np.stack(hands), mu_freq=rng.uniform(9, 13), beta_freq=rng.uniform(18, 25),
        mu_uv=settings.mu_uv * rng.lognormal(0, 0.3), erd_depth=min(depth, 0.95),
        background_gain=bg, background_uv=settings.background_uv * rng.lognormal(0, 0.2),
        alpha_gain=np.stack(alpha), alpha_freq=rng.uniform(9, 11.5),
        alpha_uv=settings.alpha_uv * rng.lognormal(0, 0.4), blink_gain=blink,
    )


@dataclass(frozen=True)
class Run:
    """One simulated run: signals (64, T) in uV and its annotations (onset, duration, label)."""

    signals: np.ndarray
    onsets_s: np.ndarray
    durations_s: np.ndarray
    descriptions: list[str]


def cue_schedule(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """EEGMMIDB's run layout: T0 4.2 s then a T1/T2 cue 4.1 s, 15 times (7 or 8 of each)."""
    n_left = int(rng.integers(7, 9))
    cues = rng.permutation(["T1"] * n_left + ["T2"] * (CUES_PER_RUN - n_left)).tolist()
    onsets, durations, descriptions = [], [], []
    for k, cue in enumerate(cues):
        t0 = k * (REST_S + TASK_S)
        onsets += [t0, t0 + REST_S]
        durations += [REST_S, TASK_S]
        descriptions += ["T0", cue]
    return np.round(np.array(onsets), 4), np.array(durations), descriptions


def simulate_run(subject: Subject, rng: np.random.Generator,
                 settings: SimulationSettings = DEFAULT_SETTINGS) -> Run:
    """One 125 s run of ``subject`` (see the module docstring for what it contains)."""
    length = RUN_SECONDS * FS
    t = np.arange(length) / FS
    onsets, durations, descriptions = cue_schedule(rng)

    # rhythm envelopes of the two hand areas (0: left hemisphere, 1: right hemisphere)
    mu_env, beta_env = np.ones((2, length)), np.ones((2, length))
    for onset, label in zip(onsets, descriptions, strict=True):
        if label == "T0" or rng.random() < settings.lapse_rate:
            continue
        contra = 1 if label == "T1" else 0  # left fist -> right hemisphere desynchronises
        depth = subject.erd_depth * rng.uniform(0.6, 1.3)
        start = onset + rng.uniform(0.3, 0.8)
        end = onset + TASK_S + rng.uniform(0.0, 0.4)
        window = _ramp(t, start, 0.5) * (1 - _ramp(t, end, 0.5))
        rebound = _ramp(t, end, 0.3) * (1 - _ramp(t, end + 0.7, 0.5))
        for hemi, scale in ((contra, 1.0), (1 - contra, 0.25)):
            mu_env[hemi] *= 1 - min(scale * depth, 0.95) * window
            beta_env[hemi] *= (1 - min(scale * depth, 0.95) * window) * (
                1 + 0.6 * scale * depth * rebound)

    mu = band_noise(rng, 2, length, subject.mu_freq, 1.0) * mu_env
    beta = band_noise(rng, 2, length, subject.beta_freq, 1.5) * beta_env
    hands = subject.mu_uv * (mu + settings.beta_ratio * beta)
    signals = subject.hand_gain.T @ hands

    n_bg = subject.background_gain.shape[1]
    signals += subject.background_uv * (subject.background_gain @ pink_noise(rng, n_bg, length))
    drift = 0.6 + 0.4 * pink_noise(rng, 2, length, exponent=3.0).clip(-1.5, 1.5)
    alpha = band_noise(rng, 2, length, subject.alpha_freq, 0.7) * drift
    signals += subject.alpha_uv * (subject.alpha_gain.T @ alpha)

    blink = np.zeros(length)
    n_blinks = rng.poisson(settings.blink_rate_hz * RUN_SECONDS)
    width = int(0.3 * FS)
    shape = np.sin(np.linspace(0, np.pi, width)) ** 2
    for s in rng.integers(0, length - width, n_blinks):
        blink[s:s + width] += settings.blink_uv * rng.uniform(0.6, 1.3) * shape
    signals += np.outer(subject.blink_gain, blink)

    phase = rng.uniform(0, 2 * np.pi, len(CHANNELS))[:, None]
    signals += settings.line_uv * rng.uniform(0.5, 1.5, (len(CHANNELS), 1)) * np.sin(
        2 * np.pi * 60 * t + phase)
    signals += settings.sensor_noise_uv * rng.standard_normal(signals.shape)
    return Run(signals.astype(np.float32), onsets, durations, descriptions)


def simulate_subject(subject: int, seed: int, runs: tuple[int, ...] = (4, 8, 12),
                     settings: SimulationSettings = DEFAULT_SETTINGS) -> dict[int, Run]:
    """Every run of one synthetic subject; deterministic in (seed, subject, run)."""
    head = head_model()
    params = draw_subject(head, subject, seed, settings)
    return {run: simulate_run(params, np.random.default_rng([seed, subject, run]), settings)
            for run in runs}


def run_epochs(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The run's T1/T2 trials cut as the physionet source cuts them (labels 0 left, 1 right)."""
    cues = [i for i, d in enumerate(run.descriptions) if d in ("T1", "T2")]
    onsets = np.array([int(round(run.onsets_s[i] * FS)) for i in cues])
    labels = np.array([0 if run.descriptions[i] == "T1" else 1 for i in cues], dtype=np.int64)
    return cut_epochs(run.signals, onsets, labels, N_SAMPLES)

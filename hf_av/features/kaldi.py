"""Kaldi-compatible log-mel filter bank, vectorised in torch.

Same semantics as ``torchaudio.compliance.kaldi.fbank`` (which CAV-MAE, LAVisH and AST call) without
importing torchaudio. Frames are cut with one strided view and processed in cache-sized chunks with reused
buffers (DC removal, pre-emphasis, window, zero-padded real FFT, power, a band-limited mel product, log), each
chunk written straight into the output. ``kaldi_fbank_padded`` also pads/cuts and normalises in that pass, which
is what the feature extractors need.
"""

from __future__ import annotations

import inspect
import math
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

import torch

from .validation import check_waveform

__all__ = [
    "kaldi_fbank",
    "kaldi_fbank_padded",
    "kaldi_num_frames",
    "kaldi_mel_banks",
    "kaldi_window",
    "kaldi_frame_params",
]

# Kaldi floors power and log energies with the float32 machine epsilon, whatever the input dtype.
_EPSILON = torch.finfo(torch.float32).eps
_MILLISECONDS_TO_SECONDS = 0.001
_WINDOW_TYPES = ("hanning", "hamming", "povey", "rectangular", "blackman")


def kaldi_frame_params(
    sample_frequency: float, frame_length: float, frame_shift: float, round_to_power_of_two: bool
) -> tuple[int, int, int]:
    """Window size, window shift and FFT size in samples, rounded exactly as Kaldi does.

    The products are evaluated in Kaldi's order and truncated with ``int`` (so a 5.2 ms shift at
    16 kHz is ``int(83.2) = 83`` samples).
    """
    window_shift = int(sample_frequency * frame_shift * _MILLISECONDS_TO_SECONDS)
    window_size = int(sample_frequency * frame_length * _MILLISECONDS_TO_SECONDS)
    padded_window_size = 1 << (window_size - 1).bit_length() if round_to_power_of_two else window_size
    return window_size, window_shift, padded_window_size


@lru_cache(maxsize=32)
def _cached_window(window_type: str, window_size: int, blackman_coeff: float, dtype: torch.dtype) -> torch.Tensor:
    # Built directly in the signal's dtype, as Kaldi/torchaudio do: a float64 window cast to float32
    # differs by 1 ulp, which moves the near-silent low mel bins by ~1e-4 after the log.
    if window_type == "hanning":
        return torch.hann_window(window_size, periodic=False, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(window_size, periodic=False, alpha=0.54, beta=0.46, dtype=dtype)
    if window_type == "povey":
        # Kaldi's default: a Hann window raised to 0.85, non-zero at the edges.
        return torch.hann_window(window_size, periodic=False, dtype=dtype).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(window_size, dtype=dtype)
    if window_type == "blackman":
        a = 2 * math.pi / (window_size - 1)
        n = torch.arange(window_size, dtype=dtype)
        return blackman_coeff - 0.5 * torch.cos(a * n) + (0.5 - blackman_coeff) * torch.cos(2 * a * n)
    raise ValueError(f"Unknown window_type {window_type!r}; expected one of {_WINDOW_TYPES}.")


def kaldi_window(window_type: str, window_size: int, blackman_coeff: float = 0.42, dtype=torch.float32):
    """The analysis window Kaldi applies to each frame (symmetric, ``periodic=False``); cached per config."""
    return _cached_window(window_type, int(window_size), float(blackman_coeff), dtype)


def _mel_scale(freq):
    # Written as Kaldi writes it (log(1 + f/700), not log1p) so the float32 filters match bit for bit.
    if isinstance(freq, torch.Tensor):
        return 1127.0 * (1.0 + freq / 700.0).log()
    return 1127.0 * math.log(1.0 + freq / 700.0)


@lru_cache(maxsize=32)
def _cached_mel_banks(
    num_bins: int, padded_window_size: int, sample_frequency: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    nyquist = 0.5 * sample_frequency
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"Bad mel range: low_freq={low_freq}, high_freq={high_freq} for sample_frequency={sample_frequency} "
            f"(need 0 <= low_freq < high_freq <= Nyquist {nyquist}; high_freq <= 0 counts from Nyquist)."
        )
    fft_bin_width = sample_frequency / padded_window_size
    mel_low, mel_high = _mel_scale(low_freq), _mel_scale(high_freq)
    mel_delta = (mel_high - mel_low) / (num_bins + 1)
    # float32 arithmetic on purpose: it is what the reference implementation computes.
    bin_index = torch.arange(num_bins, dtype=torch.float32).unsqueeze(1)
    left_mel = mel_low + bin_index * mel_delta
    center_mel = mel_low + (bin_index + 1.0) * mel_delta
    right_mel = mel_low + (bin_index + 2.0) * mel_delta
    mel = _mel_scale(fft_bin_width * torch.arange(padded_window_size // 2, dtype=torch.float32)).unsqueeze(0)
    up_slope = (mel - left_mel) / (center_mel - left_mel)
    down_slope = (right_mel - mel) / (right_mel - center_mel)
    banks = torch.clamp(torch.minimum(up_slope, down_slope), min=0.0)
    # Kaldi's banks stop one bin short of Nyquist; the Nyquist column of the spectrum gets weight 0.
    return torch.nn.functional.pad(banks, (0, 1))  # [num_bins, padded_window_size // 2 + 1]


def kaldi_mel_banks(
    num_mel_bins: int,
    padded_window_size: int,
    sample_frequency: float,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    dtype=torch.float32,
) -> torch.Tensor:
    """Kaldi triangular mel filters ``[num_mel_bins, padded_window_size // 2 + 1]`` (mel = 1127 ln(1 + f/700)).

    Built once per configuration and cached.
    """
    return _cached_mel_banks(
        int(num_mel_bins), int(padded_window_size), float(sample_frequency), float(low_freq), float(high_freq)
    ).to(dtype)


def _frames(signals: torch.Tensor, window_size: int, window_shift: int, snip_edges: bool) -> torch.Tensor:
    """[B, N] -> [B, num_frames, window_size] (a view when ``snip_edges``)."""
    num_samples = signals.shape[-1]
    if not snip_edges:
        # Kaldi centres frames on multiples of the shift and mirrors the signal at both ends
        # (the mirror includes the edge sample).
        num_frames = (num_samples + window_shift // 2) // window_shift
        pad = window_size // 2 - window_shift // 2
        reversed_signals = signals.flip(-1)
        if pad > 0:
            signals = torch.cat((reversed_signals[:, -pad:], signals, reversed_signals), dim=-1)
        else:
            signals = torch.cat((signals[:, -pad:], reversed_signals), dim=-1)
        return signals.unfold(-1, window_size, window_shift)[:, :num_frames]
    return signals.unfold(-1, window_size, window_shift)


def kaldi_num_frames(num_samples: int, window_size: int, window_shift: int, snip_edges: bool = True) -> int:
    """Frames Kaldi cuts from ``num_samples`` samples (0 if shorter than one window with ``snip_edges``)."""
    if snip_edges:
        return 0 if num_samples < window_size else 1 + (num_samples - window_size) // window_shift
    return (num_samples + window_shift // 2) // window_shift


# Frames processed together. The whole pipeline of one chunk (~1-2 MB of intermediates at 512 rows) stays in the L2
# cache and its buffers are reused; a whole batch at once ([32, 998, 512] floats = 65 MB per intermediate) spent most
# of its time in page faults and memory traffic, which made batching slower than clip by clip.
_CHUNK_ROWS = 512
# Filters per slice of the mel product: Kaldi's triangles are narrow (about 2 non-zeros per FFT bin over all filters),
# so products over each group's own band of bins do ~1/8 of the dense [F x num_mel_bins] work.
_MEL_GROUP = 16


@lru_cache(maxsize=32)
def _cached_mel_groups(
    num_bins: int,
    padded_window_size: int,
    sample_frequency: float,
    low_freq: float,
    high_freq: float,
    dtype: torch.dtype,
) -> tuple[tuple[int, int, int, int, torch.Tensor], ...]:
    """``(first_filter, end_filter, first_bin, end_bin, weights[bins, filters])`` covering every non-zero weight."""
    banks = _cached_mel_banks(num_bins, padded_window_size, sample_frequency, low_freq, high_freq).to(dtype)
    if num_bins <= _MEL_GROUP:
        return ((0, num_bins, 0, banks.shape[1], banks.T),)
    groups = []
    for first in range(0, num_bins, _MEL_GROUP):
        end = min(first + _MEL_GROUP, num_bins)
        columns = banks[first:end].ne(0).any(dim=0).nonzero()
        lo, hi = (int(columns.min()), int(columns.max()) + 1) if len(columns) else (0, 1)
        groups.append((first, end, lo, hi, banks[first:end, lo:hi].T.contiguous()))
    return tuple(groups)


@contextmanager
def _single_threaded_torch():
    """torch's intra-op thread count set to 1 for the block (process-wide; restored on exit)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def thread_independent_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of all elements, the same value whatever torch's thread count: a float32 sum split over threads adds in
    another order (for a 10-s waveform the mean moved by one step between 1 and 2 threads, the fbank by up to 2e-5)."""
    with _single_threaded_torch():
        return values.mean()


class _Workspace:
    """Buffers for one chunk of frames, allocated once per call and reused chunk after chunk."""

    def __init__(self, rows: int, window_size: int, padded_window_size: int, num_columns: int, dtype: torch.dtype):
        num_freqs = padded_window_size // 2 + 1
        complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
        self.centered = torch.empty(rows, window_size, dtype=dtype)
        self.scaled = torch.empty(rows, window_size, dtype=dtype)
        # Zero once: the columns past window_size are never written, so every chunk's FFT input is zero-padded.
        self.fft_input = torch.zeros(rows, padded_window_size, dtype=dtype)
        self.spectrum = torch.empty(rows, num_freqs, dtype=complex_dtype)
        self.squares = torch.empty(rows, num_freqs, 2, dtype=dtype)
        self.power = torch.empty(rows, num_freqs, dtype=dtype)
        self.features = torch.empty(rows, num_columns, dtype=dtype)


def _fbank_chunk(frames: torch.Tensor, out: torch.Tensor, workspace: _Workspace, options: dict) -> None:
    """Features of ``frames`` ``[k, c, W]`` (any strides) written into ``out`` ``[k, c, columns]``.

    The arithmetic up to the FFT is the reference's, operation by operation (DC removal, pre-emphasis as a multiply
    then a subtract, window), so the FFT sees the same bits; only where values are sums of positive terms (the mel
    product) may the order of additions differ, by a relative ~1e-7.
    """
    k, c, window_size = frames.shape
    rows = k * c
    ws = workspace
    if options["remove_dc_offset"]:
        source = ws.centered[:rows].view(k, c, window_size)
        torch.sub(frames, frames.mean(dim=-1, keepdim=True), out=source)
    else:
        source = frames
    if options["use_energy"] and options["raw_energy"]:
        log_energy = _log_energy(source, options["energy_floor"])
    fft_input = ws.fft_input[:rows]
    windowed = fft_input.view(k, c, -1)[..., :window_size]
    window = options["window"]
    coefficient = options["preemphasis_coefficient"]
    if coefficient != 0.0:
        # x[n] - k * x[n-1] inside each frame, with x[-1] := x[0] (Kaldi's replicate padding); multiply then
        # subtract as two roundings, exactly like the reference.
        scaled = ws.scaled[:rows].view(k, c, window_size)
        torch.mul(source, coefficient, out=scaled)
        torch.sub(source[..., 1:], scaled[..., :-1], out=windowed[..., 1:])
        torch.sub(source[..., :1], scaled[..., :1], out=windowed[..., :1])
        windowed.mul_(window)
    else:
        torch.mul(source, window, out=windowed)
    if options["use_energy"] and not options["raw_energy"]:
        log_energy = _log_energy(windowed, options["energy_floor"])

    spectrum = ws.spectrum[:rows]
    torch.fft.rfft(fft_input, dim=-1, out=spectrum)
    power = ws.power[:rows]
    if options["use_power"]:
        # |X|^2 = re^2 + im^2, each squared then summed (the reference's roundings), as two contiguous passes.
        squares = ws.squares[:rows]
        real_imag = torch.view_as_real(spectrum)
        torch.mul(real_imag, real_imag, out=squares)
        torch.add(squares[..., 0], squares[..., 1], out=power)
    else:
        torch.abs(spectrum, out=power)

    try:
        features = out.view(rows, out.shape[-1])  # write straight into the caller's rows when they are contiguous
    except RuntimeError:
        features = ws.features[:rows]
    energy_column = options["energy_column"]
    mel = features[:, 1:] if energy_column == 0 else features[:, : options["num_mel_bins"]]
    for first, end, lo, hi, weights in options["mel_groups"]:
        torch.mm(power[:, lo:hi], weights, out=mel[:, first:end])
    if options["use_log_fbank"]:
        mel.clamp_(min=_EPSILON).log_()
    if energy_column is not None:
        features[:, energy_column] = log_energy.reshape(rows)
    if options["normalize"] is not None:
        offset, divisor = options["normalize"]
        features.sub_(offset).div_(divisor)
    if features.data_ptr() != out.data_ptr() or features.stride() != (out.shape[-1], 1):
        out.copy_(features.view(k, c, -1))


def _fbank_into(signals: torch.Tensor, out: torch.Tensor, options: dict) -> None:
    """Fbank of equal-length signals ``[B, N]`` into ``out[:, :num_frames]``, chunk by chunk."""
    frames = _frames(signals, options["window_size"], options["window_shift"], options["snip_edges"])
    batch, num_frames, window_size = frames.shape
    if batch == 0 or num_frames == 0:
        return
    normalize = options["normalize"]
    if options["subtract_mean"] and normalize is not None:
        options = {**options, "normalize": None}  # the mean over all frames comes first
    rows = min(_CHUNK_ROWS, batch * num_frames)
    tasks = []
    if num_frames >= rows:
        for b in range(batch):
            for start in range(0, num_frames, rows):
                stop = min(start + rows, num_frames)
                tasks.append((frames[b : b + 1, start:stop], out[b : b + 1, start:stop]))
    else:
        clips = rows // num_frames  # whole clips per chunk
        for start in range(0, batch, clips):
            stop = min(start + clips, batch)
            tasks.append((frames[start:stop], out[start:stop, :num_frames]))

    def work(share):
        workspace = _Workspace(rows, window_size, options["padded_window_size"], out.shape[-1], frames.dtype)
        for chunk, destination in share:
            _fbank_chunk(chunk, destination, workspace, options)

    run_chunks_in_parallel(work, tasks)
    if options["subtract_mean"]:
        valid = out[:, :num_frames]
        valid.sub_(valid.mean(dim=-2, keepdim=True))
        if normalize is not None:
            valid.sub_(normalize[0]).div_(normalize[1])


def run_chunks_in_parallel(work, tasks: list) -> None:
    """``work(share)`` over ``tasks`` split across torch's thread count, each share running single-threaded ops.

    A cache-sized op split over threads waits at a barrier for every thread, which on a busy machine (a thread
    descheduled) costs more than the op itself; independent chunks never wait for each other.
    """
    threads = min(torch.get_num_threads(), len(tasks))
    if torch.get_num_threads() <= 1:
        work(tasks)
        return
    with _single_threaded_torch():
        if threads <= 1:
            work(tasks)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, [tasks[i::threads] for i in range(threads)]))


def _fbank_options(
    *,
    sample_frequency, num_mel_bins, frame_length, frame_shift, window_type, blackman_coeff, preemphasis_coefficient,
    remove_dc_offset, round_to_power_of_two, snip_edges, low_freq, high_freq, use_power, use_log_fbank, use_energy,
    raw_energy, energy_floor, htk_compat, subtract_mean, dither, vtln_warp, dtype, normalize=None,
) -> dict:
    """Checked options plus the cached window and mel filters of one configuration."""
    if dither != 0.0:
        raise ValueError("kaldi_fbank: dither must be 0.0 (random dithering is not implemented).")
    if vtln_warp != 1.0:
        raise ValueError("kaldi_fbank: vtln_warp must be 1.0 (VTLN warping is not implemented).")
    if window_type not in _WINDOW_TYPES:
        raise ValueError(f"Unknown window_type {window_type!r}; expected one of {_WINDOW_TYPES}.")
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1], got {preemphasis_coefficient}.")
    if sample_frequency <= 0:
        raise ValueError(f"sample_frequency must be positive, got {sample_frequency}.")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"kaldi_fbank computes in float32 or float64, got a {dtype} waveform; convert it first.")
    window_size, window_shift, padded_window_size = kaldi_frame_params(
        sample_frequency, frame_length, frame_shift, round_to_power_of_two
    )
    if window_size < 2:
        raise ValueError(f"frame_length {frame_length} ms gives a window of {window_size} samples (need >= 2).")
    if window_shift <= 0:
        raise ValueError(f"frame_shift {frame_shift} ms gives a shift of {window_shift} samples (need > 0).")
    mel_args = (int(num_mel_bins), int(padded_window_size), float(sample_frequency), float(low_freq), float(high_freq))
    return {
        "window_size": window_size,
        "window_shift": window_shift,
        "padded_window_size": padded_window_size,
        "snip_edges": snip_edges,
        "remove_dc_offset": remove_dc_offset,
        "preemphasis_coefficient": preemphasis_coefficient,
        "window": kaldi_window(window_type, window_size, blackman_coeff, dtype=dtype),
        "use_power": use_power,
        "use_log_fbank": use_log_fbank,
        "use_energy": use_energy,
        "raw_energy": raw_energy,
        "energy_floor": energy_floor,
        "num_mel_bins": int(num_mel_bins),
        "mel_groups": _cached_mel_groups(*mel_args, dtype),
        "energy_column": (int(num_mel_bins) if htk_compat else 0) if use_energy else None,
        "num_columns": int(num_mel_bins) + (1 if use_energy else 0),
        "subtract_mean": subtract_mean,
        "frame_length": frame_length,
        "sample_frequency": sample_frequency,
        "normalize": normalize,
    }


def _check_length(num_samples: int, options: dict) -> None:
    if num_samples < options["window_size"]:
        raise ValueError(
            f"Audio too short for Kaldi fbank: {num_samples} samples < one {options['frame_length']} ms window "
            f"({options['window_size']} samples at {options['sample_frequency']} Hz)."
        )


def kaldi_fbank(
    waveform: torch.Tensor,
    *,
    sample_frequency: float = 16000.0,
    num_mel_bins: int = 23,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    window_type: str = "povey",
    blackman_coeff: float = 0.42,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_power: bool = True,
    use_log_fbank: bool = True,
    use_energy: bool = False,
    raw_energy: bool = True,
    energy_floor: float = 1.0,
    htk_compat: bool = False,
    subtract_mean: bool = False,
    dither: float = 0.0,
    vtln_warp: float = 1.0,
    channel: int | None = -1,
) -> torch.Tensor:
    """Kaldi filter-bank features, the same numbers as ``torchaudio.compliance.kaldi.fbank``.

    Args:
        waveform: float32 or float64 tensor. ``[N]``: one signal. ``[C, N]`` with an integer ``channel``: one
            multi-channel signal, channel ``max(channel, 0)`` is used (Kaldi's ``channel=-1`` means the first).
            ``[B, C, N]`` with an integer ``channel``: a batch of multi-channel signals. ``[B, N]`` with
            ``channel=None``: a batch of mono signals of equal length, processed together.
        channel: see ``waveform``; ``None`` disables channel selection (every row is a signal).
        The other arguments are Kaldi's options with Kaldi's defaults (times in milliseconds). ``dither``
        must be 0 and ``vtln_warp`` 1 (random dithering and VTLN are not implemented).

    Returns:
        ``[num_frames, num_mel_bins (+1 with use_energy)]``, or ``[B, num_frames, ...]`` for batched input, in
        the input's floating dtype.
    """
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"kaldi_fbank expects a torch.Tensor, got {type(waveform).__name__}.")
    signals, squeeze_batch = _select_signals(waveform, channel)
    if not signals.is_floating_point():
        raise ValueError(f"kaldi_fbank expects a floating-point waveform, got {signals.dtype}.")
    options = _fbank_options(
        sample_frequency=sample_frequency, num_mel_bins=num_mel_bins, frame_length=frame_length,
        frame_shift=frame_shift, window_type=window_type, blackman_coeff=blackman_coeff,
        preemphasis_coefficient=preemphasis_coefficient, remove_dc_offset=remove_dc_offset,
        round_to_power_of_two=round_to_power_of_two, snip_edges=snip_edges, low_freq=low_freq, high_freq=high_freq,
        use_power=use_power, use_log_fbank=use_log_fbank, use_energy=use_energy, raw_energy=raw_energy,
        energy_floor=energy_floor, htk_compat=htk_compat, subtract_mean=subtract_mean, dither=dither,
        vtln_warp=vtln_warp, dtype=signals.dtype,
    )
    check_waveform(signals, name="kaldi_fbank input")
    _check_length(signals.shape[-1], options)
    signals = signals.cpu() if signals.device.type != "cpu" else signals
    num_frames = kaldi_num_frames(signals.shape[-1], options["window_size"], options["window_shift"], snip_edges)
    features = torch.empty(signals.shape[0], num_frames, options["num_columns"], dtype=signals.dtype)
    _fbank_into(signals, features, options)
    features = features.to(waveform.device)
    return features.squeeze(0) if squeeze_batch else features


def kaldi_fbank_padded(
    signals,
    num_frames: int,
    *,
    normalize: tuple[float, float] | None = None,
    padding_value: float = 0.0,
    **fbank_options,
) -> torch.Tensor:
    """Fbank of 1-D signals of any lengths as one ``[B, num_frames, columns]`` tensor, in one pass per chunk.

    What the feature extractors do clip by clip (fbank, keep the first ``num_frames`` frames or pad at the end,
    ``(x - offset) / divisor``), without the intermediate copies: each clip's rows are written into their place in
    the output, normalised while still in cache, and frames past ``num_frames`` are never computed.

    Args:
        signals: a list of float ``[N_i]`` tensors (or a ``[B, N]`` tensor).
        num_frames: rows per clip in the output.
        normalize: ``(offset, divisor)``: computed rows become ``(x - offset) / divisor`` (float32 roundings as
            ``(x - offset) / divisor`` in torch); ``None`` leaves them as they are.
        padding_value: value of the rows past a clip's last frame (give the normalised value if the padding is
            meant to be normalised too).
        fbank_options: :func:`kaldi_fbank` keyword options (``channel`` is not taken: pass the chosen channel).
    """
    if "channel" in fbank_options:
        raise ValueError("kaldi_fbank_padded takes 1-D signals; select the channel before calling it.")
    if isinstance(signals, torch.Tensor):
        if signals.ndim != 2:
            raise ValueError(
                f"kaldi_fbank_padded expects a list of [N] signals or a [B, N] tensor, got {tuple(signals.shape)}."
            )
        signals = list(signals)
    if not signals:
        raise ValueError("kaldi_fbank_padded: no signals.")
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}.")
    dtypes = {signal.dtype for signal in signals}
    for index, signal in enumerate(signals):
        if not isinstance(signal, torch.Tensor) or signal.ndim != 1:
            raise ValueError(f"signals[{index}]: expected a 1-D tensor, got {getattr(signal, 'shape', type(signal))}.")
        check_waveform(signal, name=f"signals[{index}]")
    if len(dtypes) != 1:
        raise ValueError(f"kaldi_fbank_padded: signals of several dtypes {sorted(map(str, dtypes))}; use one.")
    defaults = {name: parameter.default for name, parameter in _FBANK_PARAMETERS.items()}
    unknown = sorted(set(fbank_options) - set(defaults))
    if unknown:
        raise ValueError(f"kaldi_fbank_padded: unknown fbank option(s) {unknown}.")
    options = _fbank_options(**{**defaults, **fbank_options}, dtype=dtypes.pop(), normalize=normalize)
    window_size, window_shift, snip_edges = options["window_size"], options["window_shift"], options["snip_edges"]
    out = torch.empty(len(signals), int(num_frames), options["num_columns"], dtype=signals[0].dtype)
    by_length: dict[int, list[int]] = {}
    for index, signal in enumerate(signals):
        _check_length(signal.shape[-1], options)
        length = signal.shape[-1]
        if snip_edges and not options["subtract_mean"]:
            # frames past num_frames are cut away anyway: do not compute them
            length = min(length, (int(num_frames) - 1) * window_shift + window_size)
        by_length.setdefault(length, []).append(index)
    for length, indices in by_length.items():
        frames_here = min(kaldi_num_frames(signals[indices[0]].shape[-1], window_size, window_shift, snip_edges),
                          int(num_frames))
        out[indices, frames_here:] = padding_value
        all_frames = kaldi_num_frames(length, window_size, window_shift, snip_edges)
        contiguous = indices == list(range(indices[0], indices[0] + len(indices)))
        if all_frames == frames_here and frames_here >= _CHUNK_ROWS:  # long clips: one by one, into the output
            for index in indices:
                _fbank_into(signals[index][None, :length], out[index : index + 1, :frames_here], options)
        elif all_frames == frames_here and contiguous:  # short clips: several per chunk, straight into the output
            stacked = torch.stack([signals[index][:length] for index in indices])
            _fbank_into(stacked, out[indices[0] : indices[0] + len(indices), :frames_here], options)
        else:  # every frame is needed (subtract_mean, or mirrored edges) or the rows are scattered: via a block
            stacked = torch.stack([signals[index][:length] for index in indices])
            block = out.new_empty(len(indices), all_frames, options["num_columns"])
            _fbank_into(stacked, block, options)
            out[indices, :frames_here] = block[:, :frames_here]
    return out


_FBANK_PARAMETERS = {
    name: parameter
    for name, parameter in inspect.signature(kaldi_fbank).parameters.items()
    if name not in ("waveform", "channel")
}


def _select_signals(waveform: torch.Tensor, channel: int | None) -> tuple[torch.Tensor, bool]:
    if channel is None:
        if waveform.ndim == 1:
            return waveform.unsqueeze(0), True
        if waveform.ndim == 2:
            return waveform, False
        raise ValueError(f"With channel=None kaldi_fbank expects [N] or [B, N], got shape {tuple(waveform.shape)}.")
    index = max(int(channel), 0)
    if waveform.ndim == 1:
        return waveform.unsqueeze(0), True
    if waveform.ndim in (2, 3):
        if index >= waveform.shape[-2]:
            raise ValueError(f"channel {channel} requested but the waveform has {waveform.shape[-2]} channel(s).")
        signals = waveform[..., index, :]
        return (signals.unsqueeze(0), True) if waveform.ndim == 2 else (signals, False)
    raise ValueError(f"kaldi_fbank expects [N], [C, N] or [B, C, N], got shape {tuple(waveform.shape)}.")


def _log_energy(frames: torch.Tensor, energy_floor: float) -> torch.Tensor:
    log_energy = torch.clamp(frames.pow(2).sum(-1), min=_EPSILON).log()
    if energy_floor == 0.0:
        return log_energy
    return torch.clamp(log_energy, min=math.log(energy_floor))

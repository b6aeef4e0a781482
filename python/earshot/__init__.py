"""earshot — voice activity and keyword spotting, from Python.

A pure-ctypes binding of libearshot (earshot.h): no compiled extension and no
dependency. numpy arrays are accepted when numpy is installed, but numpy is
never imported here.

    import earshot

    with earshot.Detector() as det:            # built-in VAD and keyword models
        for chunk in chunks:                   # 16-bit PCM bytes, any size
            for event in det.feed(chunk, sample_rate=16000):
                print(event.type, event.start, event.end, event.keyword)
        for event in det.finish():             # closes a segment still open
            print(event)

The events are the ones `earshot file` prints for the same audio, whatever
the chunking. The library is found through, in order: the EARSHOT_LIBRARY
environment variable (a path), a libearshot.so* next to this file, then
ctypes.util.find_library("earshot") (an installed libearshot.so.0).
"""

import array
import ctypes
import ctypes.util
import glob
import os
from collections import deque, namedtuple

__version__ = "0.1.0"  # this binding's release (the library's: library_version())

__all__ = ["Detector", "Event", "Frame", "Error", "library_version", "load_library"]

# The ABI this binding is written for (earshot.h's EARSHOT_ABI_VERSION: the
# soname's number) and the limits it mirrors.
ABI_VERSION = 0
_MAX_KWS_MODELS = 8
_MAX_KEYWORD_SETTINGS = 64

# Python-side chunk: at most one second of audio per call into the library,
# so the queues (sized below) never overflow between two drains.
_EVENT_QUEUE = 1024
_FRAME_QUEUE = 512
_MAX_CHUNK_SECONDS = 1.0

EVENT_SPEECH = 1
EVENT_KEYWORD = 2
EVENT_SPEECH_START = 3
_TYPE_NAMES = {EVENT_SPEECH: "speech", EVENT_KEYWORD: "keyword", EVENT_SPEECH_START: "speech_start"}


class Error(Exception):
    """A failure reported by libearshot: `code` is the EARSHOT_ERR_* value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


# ---- the C structures (earshot.h); checked against earshot_params_size() ----------


class _KeywordSetting(ctypes.Structure):
    _fields_ = [("keyword", ctypes.c_char_p), ("threshold", ctypes.c_float), ("smooth_ms", ctypes.c_int)]


class _Params(ctypes.Structure):
    _fields_ = [
        ("vad_model", ctypes.c_char_p),
        ("kws_models", ctypes.c_char_p * _MAX_KWS_MODELS),
        ("kws_model_count", ctypes.c_int),
        ("vad_threshold", ctypes.c_float),
        ("vad_offset_threshold", ctypes.c_float),
        ("min_speech_ms", ctypes.c_int),
        ("min_silence_ms", ctypes.c_int),
        ("max_speech_ms", ctypes.c_int),
        ("speech_pad_ms", ctypes.c_int),
        ("speech_start_events", ctypes.c_int),
        ("kw_threshold", ctypes.c_float),
        ("kw_smooth_ms", ctypes.c_int),
        ("refractory_ms", ctypes.c_int),
        ("vad_gate", ctypes.c_int),
        ("peak_wait_ms", ctypes.c_int),
        ("keyword_setting_count", ctypes.c_int),
        ("keyword_settings", _KeywordSetting * _MAX_KEYWORD_SETTINGS),
        ("sample_rate_hz", ctypes.c_int),
        ("channels", ctypes.c_int),
        ("source", ctypes.c_char_p),
        ("wallclock", ctypes.c_int),
        ("on_event", ctypes.c_void_p),
        ("event_user", ctypes.c_void_p),
        ("event_queue_capacity", ctypes.c_int),
        ("on_frame", ctypes.c_void_p),
        ("frame_user", ctypes.c_void_p),
        ("frame_queue_capacity", ctypes.c_int),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("source", ctypes.c_char_p),
        ("keyword", ctypes.c_char_p),
        ("time", ctypes.c_double),
        ("start", ctypes.c_double),
        ("end", ctypes.c_double),
        ("score", ctypes.c_float),
        ("wallclock", ctypes.c_double),
    ]


# ---- finding and loading the library -----------------------------------------------

_lib = None


def _candidates():
    env = os.environ.get("EARSHOT_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for pattern in ("libearshot.so.%d" % ABI_VERSION, "libearshot.so", "libearshot.so.*",
                    "libearshot.dylib", "earshot.dll"):
        for path in sorted(glob.glob(os.path.join(here, pattern))):
            yield path
    found = ctypes.util.find_library("earshot")
    if found:
        yield found
    yield "libearshot.so.%d" % ABI_VERSION  # the dynamic loader's own search (LD_LIBRARY_PATH)


def _declare(lib):
    c = ctypes
    sig = {
        "earshot_strerror": (c.c_char_p, [c.c_int]),
        "earshot_version_string": (c.c_char_p, []),
        "earshot_version_number": (c.c_int, []),
        "earshot_event_to_json": (c.c_int, [c.POINTER(_Event), c.c_char_p, c.c_size_t]),
        "earshot_params_default": (_Params, []),
        "earshot_params_size": (c.c_size_t, []),
        "earshot_create": (c.c_int, [c.POINTER(_Params), c.POINTER(c.c_void_p), c.c_char_p, c.c_size_t]),
        "earshot_destroy": (None, [c.c_void_p]),
        "earshot_feed": (c.c_int, [c.c_void_p, c.c_void_p, c.c_size_t, c.c_int, c.c_int]),
        "earshot_feed_s16": (c.c_int, [c.c_void_p, c.c_void_p, c.c_size_t, c.c_int, c.c_int]),
        "earshot_finish": (c.c_int, [c.c_void_p]),
        "earshot_reset": (c.c_int, [c.c_void_p]),
        "earshot_poll_event": (c.POINTER(_Event), [c.c_void_p]),
        "earshot_frames": (c.c_int, [c.c_void_p, c.POINTER(c.c_double), c.POINTER(c.c_float), c.c_size_t]),
        "earshot_frame_columns": (c.c_int, [c.c_void_p]),
        "earshot_keyword_count": (c.c_int, [c.c_void_p]),
        "earshot_keyword_name": (c.c_char_p, [c.c_void_p, c.c_int]),
        "earshot_stream_time": (c.c_double, [c.c_void_p]),
        "earshot_dropped_events": (c.c_uint64, [c.c_void_p]),
        "earshot_dropped_frames": (c.c_uint64, [c.c_void_p]),
        "earshot_last_error": (c.c_char_p, [c.c_void_p]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load_library(path=None):
    """Loads libearshot (from `path`, else as the module docstring says) and
    checks that its earshot_params is the one this binding mirrors."""
    global _lib
    if _lib is not None and path is None:
        return _lib
    errors = []
    for candidate in [path] if path else _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            errors.append("%s: %s" % (candidate, e))
            continue
        _declare(lib)
        if lib.earshot_params_size() != ctypes.sizeof(_Params):
            raise Error(-2, "%s: earshot_params is %d bytes, this binding expects %d (another ABI)"
                        % (candidate, lib.earshot_params_size(), ctypes.sizeof(_Params)))
        _lib = lib
        return lib
    raise OSError("libearshot not found (set EARSHOT_LIBRARY to its path): " + "; ".join(errors))


def library_version():
    """The loaded library's version, e.g. "0.1.0"."""
    return load_library().earshot_version_string().decode()


# ---- events and frames ------------------------------------------------------------


class Event(namedtuple("Event", "type source keyword time start end score wallclock")):
    """One event, times in seconds of stream time (see earshot.h).

    type: "speech", "keyword" or "speech_start"; keyword: the keyword's label
    (None for speech); time: when a keyword fired (a speech event's end);
    start/end: the segment or the word; score: in [0, 1]; wallclock: Unix time
    when Detector(wallclock=True), else 0."""

    __slots__ = ()

    def to_json(self):
        """The JSON line (with its newline) `earshot file` prints for this event."""
        lib = load_library()
        codes = {v: k for k, v in _TYPE_NAMES.items()}
        raw = _Event(codes[self.type], self.source.encode(),
                     self.keyword.encode() if self.keyword is not None else None,
                     self.time, self.start, self.end, self.score, self.wallclock)
        size = lib.earshot_event_to_json(ctypes.byref(raw), None, 0) + 1
        buf = ctypes.create_string_buffer(size)
        lib.earshot_event_to_json(ctypes.byref(raw), buf, size)
        return buf.value.decode("utf-8", "replace")


def _event_from(raw):
    return Event(_TYPE_NAMES.get(raw.type, "unknown"),
                 raw.source.decode("utf-8", "replace") if raw.source else "",
                 raw.keyword.decode("utf-8", "replace") if raw.keyword else None,
                 raw.time, raw.start, raw.end, raw.score, raw.wallclock)


Frame = namedtuple("Frame", "time speech keywords")
Frame.__doc__ = """One 10 ms frame's posteriors before smoothing: `time` its start in
seconds, `speech` the VAD's probability, `keywords` a tuple in
Detector.keywords order."""


# ---- samples ----------------------------------------------------------------------


def _as_samples(data, channels):
    """(ctypes pointer, frames, is_s16, keepalive, channels) for any input:
    bytes-like (16-bit little-endian PCM), array.array ('h' or 'f'; others are
    converted to float), a numpy array (int16 or float32; others converted;
    2-D is (frames, channels)), or a sequence of floats."""
    kind = type(data).__module__.split(".")[0]
    if kind == "numpy":  # without importing numpy
        if data.ndim == 2:
            channels = data.shape[1]
        elif data.ndim != 1:
            raise ValueError("numpy input must be 1-D, or 2-D as (frames, channels)")
        if data.dtype.kind == "i" and data.dtype.itemsize == 2:
            arr = data.astype("<i2", copy=False)
            is_s16 = True
        else:
            arr = data.astype("<f4", copy=False)
            is_s16 = False
        if not arr.flags["C_CONTIGUOUS"]:
            arr = arr.copy(order="C")
        count = arr.size
        pointer = ctypes.c_void_p(arr.ctypes.data)
        return pointer, count // channels, is_s16, arr, channels, count
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data) if not isinstance(data, bytes) else data  # bytes: no copy
        if len(raw) % 2:
            raise ValueError("16-bit PCM bytes must be an even number of bytes")
        count = len(raw) // 2
        pointer = ctypes.cast(ctypes.c_char_p(raw), ctypes.c_void_p)
        return pointer, count // channels, True, raw, channels, count
    if isinstance(data, array.array) and data.typecode == "h":
        arr = data
        is_s16 = True
    elif isinstance(data, array.array) and data.typecode == "f":
        arr = data
        is_s16 = False
    else:
        arr = array.array("f", data)
        is_s16 = False
    count = len(arr)
    address = arr.buffer_info()[0] if count else 0
    return ctypes.c_void_p(address), count // channels, is_s16, arr, channels, count


# ---- the detector -------------------------------------------------------------------


class Detector:
    """A detector for one stream of audio (see earshot.h for every setting).

    vad_model: a model file's path, or None for the built-in VAD.
    kws_models: None for the built-in keyword model (as `earshot file`), ()
        for no keyword spotting, or a sequence of model paths ("builtin" too).
    sample_rate, channels: the input's format (any rate 8000..96000, any
        channel count); feed() may override them on its first call.
    frames: True keeps per-frame posteriors for frames().
    source: the "source" every event carries (as `earshot file`'s path).
    keyword_thresholds: {keyword: threshold} (as --kw-threshold-for).
    The other keywords mirror earshot_params' fields (and `earshot file`'s
    flags): vad_threshold, vad_offset_threshold, min_speech_ms,
    min_silence_ms, max_speech_ms, speech_pad_ms, speech_start_events,
    kw_threshold, kw_smooth_ms, refractory_ms, vad_gate, peak_wait_ms,
    wallclock.
    """

    _KNOBS = ("vad_threshold", "vad_offset_threshold", "min_speech_ms", "min_silence_ms",
              "max_speech_ms", "speech_pad_ms", "speech_start_events", "kw_threshold",
              "kw_smooth_ms", "refractory_ms", "vad_gate", "peak_wait_ms", "wallclock")

    def __init__(self, vad_model=None, kws_models=None, sample_rate=16000, channels=1,
                 frames=False, source="", keyword_thresholds=None, **knobs):
        self._lib = load_library()
        self._handle = None
        self._events = deque()
        self._frames = []
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        params = self._lib.earshot_params_default()
        keep = []  # bytes objects the params point at, alive until create returns

        def text(value):
            b = os.fsencode(value) if not isinstance(value, bytes) else value
            keep.append(b)
            return b

        params.vad_model = text(vad_model) if vad_model is not None else None
        if kws_models is not None:
            kws_models = [kws_models] if isinstance(kws_models, (str, bytes, os.PathLike)) else list(kws_models)
            if len(kws_models) > _MAX_KWS_MODELS:
                raise ValueError("at most %d keyword models" % _MAX_KWS_MODELS)
            for i, path in enumerate(kws_models):
                params.kws_models[i] = text(path) if path is not None else None
            params.kws_model_count = len(kws_models)
        for name, value in knobs.items():
            if name not in self._KNOBS:
                raise TypeError("Detector() got an unexpected keyword argument '%s'" % name)
            setattr(params, name, int(value) if isinstance(value, bool) else value)
        for i, (word, threshold) in enumerate(sorted((keyword_thresholds or {}).items())):
            if i >= _MAX_KEYWORD_SETTINGS:
                raise ValueError("at most %d keyword thresholds" % _MAX_KEYWORD_SETTINGS)
            params.keyword_settings[i].keyword = text(word.encode())
            params.keyword_settings[i].threshold = threshold
            params.keyword_setting_count = i + 1
        params.source = text(source.encode())
        params.event_queue_capacity = _EVENT_QUEUE
        params.frame_queue_capacity = _FRAME_QUEUE if frames else 0

        handle = ctypes.c_void_p()
        why = ctypes.create_string_buffer(512)
        rc = self._lib.earshot_create(ctypes.byref(params), ctypes.byref(handle), why, len(why))
        if rc < 0:
            raise Error(rc, why.value.decode("utf-8", "replace") or self._strerror(rc))
        self._handle = handle
        self.keywords = tuple(self._lib.earshot_keyword_name(handle, i).decode()
                              for i in range(self._lib.earshot_keyword_count(handle)))

    # -- plumbing

    def _strerror(self, rc):
        return self._lib.earshot_strerror(rc).decode()

    def _check(self, rc):
        if rc < 0:
            message = self._lib.earshot_last_error(self._handle).decode("utf-8", "replace")
            raise Error(rc, message or self._strerror(rc))
        return rc

    def _live(self):
        if self._handle is None:
            raise ValueError("the detector is closed")
        return self._handle

    def _drain(self):
        """Moves what the library queued into Python: returns the new events."""
        new = []
        while True:
            raw = self._lib.earshot_poll_event(self._handle)
            if not raw:
                break
            new.append(_event_from(raw.contents))
        self._events.extend(new)
        columns = self._lib.earshot_frame_columns(self._handle)
        times = (ctypes.c_double * _FRAME_QUEUE)()
        rows = (ctypes.c_float * (_FRAME_QUEUE * columns))()
        while True:
            got = self._check(self._lib.earshot_frames(self._handle, times, rows, _FRAME_QUEUE))
            if got == 0:
                break
            for i in range(got):
                row = rows[i * columns:(i + 1) * columns]
                self._frames.append(Frame(times[i], row[0], tuple(row[1:])))
        return new

    # -- the stream

    def feed(self, samples, sample_rate=None, channels=None):
        """Runs audio through the detector and returns the events it completed
        (they are also kept for iteration). `samples`: 16-bit little-endian PCM
        bytes, array.array('h' or 'f'), a numpy array (int16 or float; 2-D is
        (frames, channels)), or a sequence of floats in [-1, 1]. Any length;
        the format must stay the same for the whole stream."""
        handle = self._live()
        rate = int(sample_rate) if sample_rate is not None else self.sample_rate
        ch = int(channels) if channels is not None else self.channels
        pointer, frames, is_s16, keep, ch, count = _as_samples(samples, ch)
        if count % ch:
            raise ValueError("%d samples are not whole frames of %d channels" % (count, ch))
        feed = self._lib.earshot_feed_s16 if is_s16 else self._lib.earshot_feed
        width = 2 if is_s16 else 4
        step = max(1, int(rate * _MAX_CHUNK_SECONDS))
        new = []
        done = 0
        while True:
            n = min(step, frames - done)
            address = (pointer.value or 0) + done * ch * width
            self._check(feed(handle, ctypes.c_void_p(address) if n else None, n, rate, ch))
            new.extend(self._drain())
            done += n
            if done >= frames:
                break
        del keep
        return new

    def finish(self):
        """End of input: closes a speech segment still open and returns the
        last events. feed() then fails until reset()."""
        self._check(self._lib.earshot_finish(self._live()))
        return self._drain()

    def reset(self):
        """Starts a new stream at time 0 (same models and settings)."""
        self._check(self._lib.earshot_reset(self._live()))
        self._events.clear()
        self._frames.clear()

    def events(self):
        """The events not yet taken (by iteration or an earlier events())."""
        taken = list(self._events)
        self._events.clear()
        return taken

    def __iter__(self):
        while self._events:
            yield self._events.popleft()

    def frames(self):
        """The per-frame posteriors not yet taken (needs Detector(frames=True)),
        as Frame(time, speech, keywords) tuples."""
        taken, self._frames = self._frames, []
        return taken

    @property
    def stream_time(self):
        """Seconds of audio fed since the start (or reset)."""
        return self._lib.earshot_stream_time(self._live())

    def close(self):
        """Frees the detector (idempotent)."""
        if self._handle is not None:
            self._lib.earshot_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

"""The Python module against the built library and the `earshot` binary.

Run from the tree (ctest daemon_embed_python sets these):
    EARSHOT_LIBRARY=BUILD/daemon/embed/libearshot.so EARSHOT_BINARY=BUILD/daemon/earshot \
    PYTHONPATH=python python3 -m unittest discover python/tests
Without EARSHOT_BINARY the comparisons with `earshot file` are skipped.
"""

import array
import ctypes
import os
import subprocess
import sys
import unittest
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package in the tree, before any installed copy

import earshot  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
DEMO = os.path.join(SOURCE_DIR, "tests", "clips", "demo.wav")
BINARY = os.environ.get("EARSHOT_BINARY")

try:
    import numpy
except ImportError:
    numpy = None


def read_demo():
    with wave.open(DEMO) as w:
        assert w.getsampwidth() == 2
        return w.readframes(w.getnframes()), w.getframerate(), w.getnchannels()


def earshot_file(*args):
    if not BINARY:
        raise unittest.SkipTest("EARSHOT_BINARY not set")
    return subprocess.run([BINARY, "file", *args], check=True, capture_output=True,
                          text=True).stdout


def feed_in_chunks(det, data, sizes, width):
    """Feeds `data` (bytes, array, list) in the given chunk sizes, in turn."""
    events, done, i = [], 0, 0
    while done < len(data) // (width if isinstance(data, bytes) else 1):
        n = sizes[i % len(sizes)]
        if isinstance(data, bytes):
            events += det.feed(data[done * width:(done + n) * width])
        else:
            events += det.feed(data[done:done + n])
        done += n
        i += 1
    return events + det.finish()


CHUNKS = [1, 7, 333, 4097, 160, 12345, 2, 999]


class EventsMatchEarshotFile(unittest.TestCase):
    """For the same audio, the events are the lines `earshot file` prints."""

    @classmethod
    def setUpClass(cls):
        cls.pcm, cls.rate, cls.channels = read_demo()
        cls.expected = earshot_file(DEMO)
        assert cls.expected.count("\n") >= 3

    def check(self, data, width=1, **kwargs):
        with earshot.Detector(sample_rate=self.rate, channels=self.channels, source=DEMO,
                              **kwargs) as det:
            events = feed_in_chunks(det, data, CHUNKS, width)
            self.assertEqual("".join(e.to_json() for e in events), self.expected)
            # Iteration gives the same events once.
            self.assertEqual(list(det), events)
            self.assertEqual(list(det), [])

    def test_bytes(self):
        self.check(self.pcm, width=2)

    def test_array_int16(self):
        self.check(array.array("h", self.pcm))

    def test_array_float(self):
        self.check(array.array("f", (s / 32768.0 for s in array.array("h", self.pcm))))

    def test_list_of_floats(self):
        self.check([s / 32768.0 for s in array.array("h", self.pcm)])

    def test_numpy(self):
        if numpy is None:
            self.skipTest("numpy not installed")
        ints = numpy.frombuffer(self.pcm, dtype="<i2")
        self.check(ints)
        self.check(ints.astype(numpy.float64) / 32768.0)  # converted to float32, as libsndfile

    def test_one_feed(self):
        with earshot.Detector(source=DEMO) as det:
            det.feed(self.pcm)
            det.finish()
            self.assertEqual("".join(e.to_json() for e in det), self.expected)

    def test_knobs(self):
        expected = earshot_file("--min-silence-ms", "300", "--speech-start",
                                "--kw-threshold-for", "stop=0.9", DEMO)
        with earshot.Detector(source=DEMO, min_silence_ms=300, speech_start_events=True,
                              keyword_thresholds={"stop": 0.9}) as det:
            det.feed(self.pcm)
            det.finish()
            events = det.events()
        self.assertEqual("".join(e.to_json() for e in events), expected)
        self.assertIn("speech_start", {e.type for e in events})


class Frames(unittest.TestCase):
    def test_frames_match_format_frames(self):
        expected = earshot_file("--format", "frames", DEMO)
        pcm, rate, channels = read_demo()
        with earshot.Detector(frames=True) as det:
            feed_in_chunks(det, pcm, [3000, 17], 2)
            frames = det.frames()
            lines = ["time_s,speech" + "".join("," + k for k in det.keywords)]
            for f in frames:
                lines.append("%.2f,%.6f" % (f.time, f.speech)
                             + "".join(",%.6f" % p for p in f.keywords))
            self.assertEqual("\n".join(lines) + "\n", expected)
            self.assertEqual(det.frames(), [])

    def test_no_frames_unless_asked(self):
        with earshot.Detector() as det:
            det.feed(bytes(32000))
            self.assertEqual(det.frames(), [])


class Api(unittest.TestCase):
    def test_version_and_layout(self):
        lib = earshot.load_library()
        self.assertEqual(lib.earshot_params_size(), ctypes.sizeof(earshot._Params))
        self.assertRegex(earshot.library_version(), r"^\d+\.\d+\.\d+$")

    def test_errors(self):
        with self.assertRaises(earshot.Error) as caught:
            earshot.Detector(vad_model="/nonexistent/vad.esm")
        self.assertIn("/nonexistent/vad.esm", str(caught.exception))
        self.assertEqual(caught.exception.code, -3)
        with self.assertRaises(earshot.Error) as caught:
            earshot.Detector(keyword_thresholds={"banana": 0.5})
        self.assertIn("banana", str(caught.exception))
        with self.assertRaises(earshot.Error):
            earshot.Detector(vad_threshold=2.0)
        with self.assertRaises(TypeError):
            earshot.Detector(no_such_knob=1)

        det = earshot.Detector(kws_models=())
        self.assertEqual(det.keywords, ())
        det.feed(bytes(960), sample_rate=48000)
        with self.assertRaises(earshot.Error) as caught:
            det.feed(bytes(960), sample_rate=44100)
        self.assertIn("48000 Hz", str(caught.exception))
        with self.assertRaises(ValueError):
            det.feed(b"\x00")
        det.finish()
        with self.assertRaises(earshot.Error):
            det.feed(bytes(960), sample_rate=48000)
        det.reset()
        det.feed(bytes(960), sample_rate=44100)  # a new stream, a new format
        self.assertAlmostEqual(det.stream_time, 480 / 44100)
        det.close()
        det.close()
        with self.assertRaises(ValueError):
            det.feed(bytes(960))

    def test_keyword_models(self):
        with earshot.Detector() as det:
            self.assertIn("stop", det.keywords)
        with earshot.Detector(kws_models=["builtin", "builtin"]) as det:
            self.assertEqual(len(det.keywords), 2 * len(earshot.Detector().keywords))

    def test_empty_feed(self):
        with earshot.Detector() as det:
            self.assertEqual(det.feed(b""), [])
            self.assertEqual(det.feed([]), [])
            self.assertEqual(det.finish(), [])


if __name__ == "__main__":
    unittest.main()

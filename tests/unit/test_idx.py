"""IDX reading and EMNIST loading on small files written here: upright glyphs, every split's mapping, every bad file."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from difflab.data.idx import EMNIST_SPLITS, load_emnist, read_idx, read_mapping
from difflab.errors import UserError

TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def idx_bytes(array: np.ndarray, type_code: int | None = None) -> bytes:
    """IDX encoding written independently of the reader: magic, big-endian sizes, big-endian data."""
    big = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    code = TYPE_CODES[big.dtype] if type_code is None else type_code
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big.tobytes()


def write(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def glyph() -> np.ndarray:
    """An upright 28×28 'F': asymmetric under transposition and both flips."""
    g = np.zeros((28, 28), dtype=np.uint8)
    g[4:24, 6:9] = 255  # stem on the left
    g[4:7, 6:20] = 255  # top bar
    g[12:15, 6:16] = 200  # middle bar
    return g


def true_mapping(split: str) -> list[tuple[int, ...]]:
    """The EMNIST mapping rows of each split (Cohen et al. 2017, table II), built from their definition."""
    digits = [(k, 48 + k) for k in range(10)]
    upper = [(10 + k, 65 + k) for k in range(26)]
    if split in ("digits", "mnist"):
        return digits
    if split == "letters":
        return [(k + 1, 65 + k, 97 + k) for k in range(26)]
    if split == "byclass":
        return digits + upper + [(36 + k, 97 + k) for k in range(26)]
    merged_lower = "abdefghnqrt"  # the 11 lower-case letters bymerge/balanced keep apart
    return digits + upper + [(36 + k, ord(ch)) for k, ch in enumerate(merged_lower)]


def make_emnist(
    root: Path,
    split: str,
    part: str = "train",
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    gz: bool = True,
) -> Path:
    """Write one split's image, label and mapping files; images are stored transposed, as EMNIST does."""
    rows = true_mapping(split)
    ext = ".gz" if gz else ""
    if labels is None:
        labels = np.array([r[0] for r in rows], dtype=np.uint8)
    if images is None:
        images = np.stack([np.full((28, 28), k, dtype=np.uint8) for k in range(len(labels))])
    stored = images.transpose(0, 2, 1) if images.ndim == 3 else images
    write(root / f"emnist-{split}-{part}-images-idx3-ubyte{ext}", idx_bytes(np.ascontiguousarray(stored)))
    write(root / f"emnist-{split}-{part}-labels-idx1-ubyte{ext}", idx_bytes(labels))
    (root / f"emnist-{split}-mapping.txt").write_text("".join(" ".join(map(str, r)) + "\n" for r in rows))
    return root


def error(call, *args) -> str:
    with pytest.raises(UserError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("dtype", ["u1", ">i4", ">f4"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.arange(2 * 3 * 5) * 7 % 251).reshape(2, 3, 5).astype(dtype)
    out = read_idx(write(tmp_path / f"a-idx3-ubyte{suffix}", idx_bytes(array)))
    assert out.shape == (2, 3, 5) and out.dtype.isnative
    np.testing.assert_array_equal(out, array.astype(np.dtype(dtype).newbyteorder("=")))


def test_glyph_written_transposed_comes_back_upright(tmp_path: Path) -> None:
    g = glyph()
    make_emnist(tmp_path, "digits", images=np.stack([g, g[:, ::-1]]), labels=np.array([3, 7], dtype=np.uint8))
    data = load_emnist(tmp_path, "digits", "train")
    assert data.images.shape == (2, 1, 28, 28) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[0, 0], g)
    np.testing.assert_array_equal(data.images[1, 0], g[:, ::-1])
    assert data.images[0, 0, 10, 7] == 255 and data.images[0, 0, 7, 10] == 0  # stem left, not on top
    assert [data.class_names[k] for k in data.labels] == ["3", "7"]


@pytest.mark.parametrize("split", EMNIST_SPLITS)
def test_every_split_mapping(tmp_path: Path, split: str) -> None:
    rows = true_mapping(split)
    data = load_emnist(make_emnist(tmp_path, split), split, "train")
    assert len(data.class_names) == {"byclass": 62, "bymerge": 47, "balanced": 47, "letters": 26}.get(split, 10)
    assert data.class_names == [chr(r[1]) for r in rows]
    np.testing.assert_array_equal(data.labels, np.arange(len(rows)))  # file labels → 0..K-1 in mapping order
    np.testing.assert_array_equal(data.images[:, 0, 0, 0], np.arange(len(rows)))  # image k stays with label k


def test_letters_labels_start_at_one(tmp_path: Path) -> None:
    make_emnist(
        tmp_path, "letters", labels=np.array([1, 26, 8], dtype=np.uint8), images=np.zeros((3, 28, 28), np.uint8)
    )
    data = load_emnist(tmp_path, "letters", "train")
    assert [data.class_names[k] for k in data.labels] == ["A", "Z", "H"]
    assert read_mapping(tmp_path / "emnist-letters-mapping.txt")[1] == "A"


def test_plain_files_and_gzip_subfolder(tmp_path: Path) -> None:
    make_emnist(tmp_path, "mnist", "test", gz=False)
    assert len(load_emnist(tmp_path, "mnist", "test")) == 10
    (tmp_path / "gzip").mkdir()
    make_emnist(tmp_path / "gzip", "balanced", "train")
    assert len(load_emnist(tmp_path, "balanced", "train")) == 47


def test_bad_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "x-idx1-ubyte", b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    assert "bad magic number 0x12340801" in error(read_idx, path) and str(path) in error(read_idx, path)
    path = write(tmp_path / "y-idx1-ubyte", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    assert "bad magic" in error(read_idx, path)


@pytest.mark.parametrize("cut", [2, 7, -1])
def test_truncated(tmp_path: Path, cut: int) -> None:
    payload = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    path = write(tmp_path / "t-idx3-ubyte.gz", payload[:cut])
    assert "truncated" in error(read_idx, path)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "t-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))[:-20])
    assert "gzip" in error(read_idx, path)


def test_trailing_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "t-idx1-ubyte", idx_bytes(np.zeros(3, dtype=np.uint8)) + b"\x00")
    assert "too long" in error(read_idx, path)


def test_wrong_dimensions(tmp_path: Path) -> None:
    make_emnist(tmp_path, "digits", images=np.zeros((10, 784), dtype=np.uint8))
    assert "expected uint8 images of shape (N, H, W)" in error(load_emnist, tmp_path, "digits", "train")
    make_emnist(tmp_path, "mnist", labels=np.zeros((10, 1), dtype=np.uint8), images=np.zeros((10, 28, 28), np.uint8))
    assert "labels of shape (N,)" in error(load_emnist, tmp_path, "mnist", "train")


def test_count_mismatch(tmp_path: Path) -> None:
    make_emnist(tmp_path, "digits", images=np.zeros((9, 28, 28), dtype=np.uint8))
    message = error(load_emnist, tmp_path, "digits", "train")
    assert "9 images" in message and "10 labels" in message


def test_label_not_in_mapping(tmp_path: Path) -> None:
    make_emnist(tmp_path, "digits", labels=np.array([3, 12], dtype=np.uint8), images=np.zeros((2, 28, 28), np.uint8))
    assert "label 12 is not in" in error(load_emnist, tmp_path, "digits", "train")


def test_missing_files_and_unknown_split(tmp_path: Path) -> None:
    assert "emnist-digits-train-images-idx3-ubyte" in error(load_emnist, tmp_path, "digits", "train")
    assert "unknown EMNIST split 'bogus'" in error(load_emnist, tmp_path, "bogus", "train")
    assert "not found" in error(load_emnist, tmp_path / "nope", "digits", "train")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0 48\n1 x\n", "line 2: expected integers"),
        ("0\n", "line 1: expected"),
        ("0 48\n0 49\n", "mapped twice"),
        ("", "empty"),
    ],
)
def test_bad_mapping(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "emnist-digits-mapping.txt"
    path.write_text(text)
    assert problem in error(read_mapping, path)

"""The one exception hierarchy of edge-yolo. The CLI turns any EdgeYoloError into one line."""


class EdgeYoloError(Exception):
    """Base class of every error edge-yolo raises on purpose."""


class ModelLoadError(EdgeYoloError):
    """A model or checkpoint file cannot be read (missing, truncated, corrupt, hostile)."""


class UnsafeCheckpointError(ModelLoadError):
    """A checkpoint pickle references something outside the allow-list; nothing was executed."""


class UnsupportedModelError(ModelLoadError):
    """The file is readable but is not a model edge-yolo supports (wrong task, layout or shape)."""


class SourceError(EdgeYoloError):
    """An input source (image, video, stream, directory) cannot be opened or read."""


class BackendUnavailableError(EdgeYoloError):
    """A requested inference backend is not installed or does not really run here."""


class ExportError(EdgeYoloError):
    """An export failed, or the exported model does not match the PyTorch model."""


class DataError(EdgeYoloError):
    """A dataset (data.yaml, images, labels) is missing or malformed."""


def one_line(text: object) -> str:
    """`text` (a message or an exception) on one line: its non-blank lines joined by spaces.
    YAML, OpenVINO and ONNX Runtime put the useful part of their messages on later lines."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())

"""Camera communicators for real cameras (OpenCV: USB devices, streams, video files)."""
from communicators.camera.opencv_camera_communicator import (
    OpenCVCameraCommunicator,
    OpenCVCameraConfig,
    SourceKind,
)

__all__ = ["OpenCVCameraCommunicator", "OpenCVCameraConfig", "SourceKind"]

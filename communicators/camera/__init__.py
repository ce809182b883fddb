"""Camera communicators for real cameras (OpenCV: USB devices, streams, video files)."""

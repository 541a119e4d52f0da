"""vidqueue: a video processing queue for S3-compatible storage, RQ and ffmpeg."""

__version__ = "0.1.0"

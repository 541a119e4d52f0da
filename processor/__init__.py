"""The worker: runs RQ video jobs (probe, transcode, publish)."""

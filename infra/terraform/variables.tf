variable "endpoint" {
  description = "URL of the S3 API (Storj's gateway, MinIO, ...); null for AWS itself."
  type        = string
  default     = null
}

variable "region" {
  description = "Region of the buckets. Gateways that ignore regions accept any name."
  type        = string
  default     = "us-east-1"
}

variable "access_key" {
  description = "S3 access key; null reads AWS_ACCESS_KEY_ID and the other usual sources."
  type        = string
  default     = null
  sensitive   = true
}

variable "secret_key" {
  description = "S3 secret key; null reads AWS_SECRET_ACCESS_KEY and the other usual sources."
  type        = string
  default     = null
  sensitive   = true
}

variable "upload_bucket" {
  description = "Bucket that browsers upload raw videos into (VIDQUEUE_UPLOAD_BUCKET)."
  type        = string
  default     = "vidqueue-uploads"
}

variable "output_bucket" {
  description = "Bucket that workers publish transcoded videos into (VIDQUEUE_OUTPUT_BUCKET)."
  type        = string
  default     = "vidqueue-videos"
}

variable "enable_cors" {
  description = "Set CORS rules so browsers may upload and play. Off where the endpoint has no bucket CORS API (Storj)."
  type        = bool
  default     = true
}

variable "cors_allowed_origins" {
  description = "Origins of the web pages that upload and play, e.g. [\"https://video.example.com\"]. Needed when enable_cors is on."
  type        = list(string)
  default     = []
}

variable "enable_lifecycle" {
  description = "Set lifecycle rules (expire raw uploads, abort stale multipart uploads). Off where the endpoint has no lifecycle API (Storj)."
  type        = bool
  default     = true
}

variable "upload_expiry_days" {
  description = "Days after which raw uploads are deleted; a failed job can be retried only while its upload exists."
  type        = number
  default     = 7

  validation {
    condition     = var.upload_expiry_days >= 1
    error_message = "upload_expiry_days must be at least 1."
  }
}

variable "abort_multipart_days" {
  description = "Days after which unfinished multipart uploads are aborted; 0 leaves that rule out (MinIO cleans them up itself)."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_multipart_days >= 0
    error_message = "abort_multipart_days must be 0 (no rule) or more."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects."
  type        = bool
  default     = false
}

# The two buckets of one vidqueue installation, on any S3-compatible endpoint.
#
# Browsers PUT (or POST) raw videos straight into the upload bucket through
# presigned URLs; workers write the results into the output bucket. CORS and
# lifecycle rules are optional because not every gateway implements those APIs.

provider "aws" {
  region     = var.region
  access_key = var.access_key
  secret_key = var.secret_key

  # A custom endpoint is not AWS: no account to look up, no region list, no
  # instance metadata, and bucket names in the path rather than the host name.
  endpoints {
    s3 = var.endpoint
  }
  s3_use_path_style           = local.custom_endpoint
  skip_credentials_validation = local.custom_endpoint
  skip_requesting_account_id  = local.custom_endpoint
  skip_metadata_api_check     = local.custom_endpoint
  skip_region_validation      = local.custom_endpoint
}

locals {
  custom_endpoint = var.endpoint != null
  s3_endpoint     = coalesce(var.endpoint, "https://s3.${var.region}.amazonaws.com")
  abort_multipart = var.enable_lifecycle && var.abort_multipart_days > 0

  settings = {
    VIDQUEUE_S3_ENDPOINT   = local.s3_endpoint
    VIDQUEUE_S3_REGION     = var.region
    VIDQUEUE_UPLOAD_BUCKET = aws_s3_bucket.upload.bucket
    VIDQUEUE_OUTPUT_BUCKET = aws_s3_bucket.output.bucket
  }
}

resource "aws_s3_bucket" "upload" {
  bucket        = var.upload_bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket" "output" {
  bucket        = var.output_bucket
  force_destroy = var.force_destroy
}

# Browsers send the bytes with PUT (single request or multipart parts) or a
# POST form, and read each part's ETag to complete a multipart upload.
resource "aws_s3_bucket_cors_configuration" "upload" {
  count  = var.enable_cors ? 1 : 0
  bucket = aws_s3_bucket.upload.id

  cors_rule {
    allowed_methods = ["PUT", "POST"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["*"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }

  lifecycle {
    precondition {
      condition     = length(var.cors_allowed_origins) > 0
      error_message = "Set cors_allowed_origins to the web page's origin, or turn enable_cors off."
    }
  }
}

# The web page plays results from here; HLS players fetch them with XHR.
resource "aws_s3_bucket_cors_configuration" "output" {
  count  = var.enable_cors ? 1 : 0
  bucket = aws_s3_bucket.output.id

  cors_rule {
    allowed_methods = ["GET", "HEAD"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["*"]
    expose_headers  = ["ETag", "Content-Length", "Content-Range"]
    max_age_seconds = 3600
  }

  lifecycle {
    precondition {
      condition     = length(var.cors_allowed_origins) > 0
      error_message = "Set cors_allowed_origins to the web page's origin, or turn enable_cors off."
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "upload" {
  count  = var.enable_lifecycle ? 1 : 0
  bucket = aws_s3_bucket.upload.id

  # Raw uploads are only needed until their job has been processed.
  rule {
    id     = "expire-raw-uploads"
    status = "Enabled"
    filter {}

    expiration {
      days = var.upload_expiry_days
    }
  }

  dynamic "rule" {
    for_each = local.abort_multipart ? [var.abort_multipart_days] : []
    content {
      id     = "abort-incomplete-multipart-uploads"
      status = "Enabled"
      filter {}

      abort_incomplete_multipart_upload {
        days_after_initiation = rule.value
      }
    }
  }
}

# Workers upload large results in parts too; a crash can leave parts behind.
resource "aws_s3_bucket_lifecycle_configuration" "output" {
  count  = local.abort_multipart ? 1 : 0
  bucket = aws_s3_bucket.output.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_multipart_days
    }
  }
}

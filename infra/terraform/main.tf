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
  bucket_names    = { upload = var.upload_bucket, output = var.output_bucket }

  # Browsers send raw videos to the upload bucket with PUT (one request, or the
  # parts of a multipart upload) or a POST form, and read each part's ETag to
  # complete a multipart upload. The web page plays results from the output
  # bucket; HLS players fetch them with XHR.
  cors_rules = {
    upload = { methods = ["PUT", "POST"], expose = ["ETag"] }
    output = { methods = ["GET", "HEAD"], expose = ["ETag", "Content-Length", "Content-Range"] }
  }

  # Raw uploads are needed only until their job is processed; results stay.
  # Both buckets get multipart uploads, which a crash can leave unfinished.
  expiry_days = { upload = var.upload_expiry_days, output = null }
  lifecycle_buckets = var.enable_lifecycle ? {
    for name, days in local.expiry_days : name => days
    if days != null || var.abort_multipart_days > 0
  } : {}

  settings = {
    VIDQUEUE_S3_ENDPOINT   = local.s3_endpoint
    VIDQUEUE_S3_REGION     = var.region
    VIDQUEUE_UPLOAD_BUCKET = aws_s3_bucket.bucket["upload"].bucket
    VIDQUEUE_OUTPUT_BUCKET = aws_s3_bucket.bucket["output"].bucket
  }
}

resource "aws_s3_bucket" "bucket" {
  for_each      = local.bucket_names
  bucket        = each.value
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_cors_configuration" "bucket" {
  for_each = var.enable_cors ? local.cors_rules : {}
  bucket   = aws_s3_bucket.bucket[each.key].id

  cors_rule {
    allowed_methods = each.value.methods
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["*"]
    expose_headers  = each.value.expose
    max_age_seconds = 3600
  }

  lifecycle {
    precondition {
      condition     = length(var.cors_allowed_origins) > 0
      error_message = "Set cors_allowed_origins to the web page's origin, or turn enable_cors off."
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "bucket" {
  for_each = local.lifecycle_buckets
  bucket   = aws_s3_bucket.bucket[each.key].id

  dynamic "rule" {
    for_each = each.value == null ? [] : [each.value]
    content {
      id     = "expire-raw-uploads"
      status = "Enabled"
      filter {}

      expiration {
        days = rule.value
      }
    }
  }

  dynamic "rule" {
    for_each = var.abort_multipart_days > 0 ? [var.abort_multipart_days] : []
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

"""Object storage on any S3-compatible endpoint (Storj, MinIO, AWS, moto)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from vidqueue import defaults
from vidqueue.errors import StorageError
from vidqueue.settings import Settings

logger = logging.getLogger("vidqueue.storage")

_TRANSFER = TransferConfig(
    multipart_threshold=defaults.MULTIPART_CHUNK_BYTES,
    multipart_chunksize=defaults.MULTIPART_CHUNK_BYTES,
    max_concurrency=4,
)


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD request tells about an object."""

    size: int
    etag: str
    content_type: str | None


@dataclass(frozen=True)
class PresignedRequest:
    """An HTTP request a client may send without credentials."""

    method: str
    url: str
    headers: dict[str, str]


class Storage:
    """The buckets of one vidqueue installation.

    Every method turns storage faults that may pass (5xx, timeouts, refused
    connections) into `StorageError`, so callers can retry them.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.upload_bucket = settings.upload_bucket
        self.output_bucket = settings.output_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def presign_put(
        self, key: str, content_type: str, size: int, expires_s: int
    ) -> PresignedRequest:
        """A PUT into the upload bucket that signs the exact type and length.

        Content-Type and Content-Length are in the signed headers, so storage
        refuses a body of another size or type, and the URL dies after `expires_s`.
        """
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.upload_bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_s,
            HttpMethod="PUT",
        )
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        return PresignedRequest("PUT", url, headers)

    def presign_post(
        self, key: str, content_type: str, size: int, expires_s: int
    ) -> tuple[str, dict[str, str]]:
        """A browser form POST into the upload bucket: its URL and form fields.

        The signed policy fixes the key and Content-Type and allows exactly
        `size` bytes (`content-length-range`), for endpoints that support POST
        policies (AWS, MinIO; not every S3-compatible gateway does).
        """
        answer = self.client.generate_presigned_post(
            self.upload_bucket,
            key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", size, size],
            ],
            ExpiresIn=expires_s,
        )
        return answer["url"], answer["fields"]

    def presign_get(
        self, bucket: str, key: str, expires_s: int, filename: str | None = None
    ) -> str:
        """A GET URL for one object, valid for `expires_s` seconds."""
        params = {"Bucket": bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = (
                f"inline; filename*=UTF-8''{quote(filename)}"
            )
        return self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_s
        )

    def output_url(self, key: str) -> str:
        """Where viewers fetch an output: the public base URL, else a presigned GET."""
        base = self.settings.public_base_url
        if base:
            return f"{base.rstrip('/')}/{quote(key)}"
        return self.presign_get(
            self.output_bucket, key, defaults.DOWNLOAD_URL_EXPIRY_SECONDS
        )

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's size and ETag, or None when it does not exist."""
        try:
            answer = self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _status(exc) in (403, 404):
                return None
            raise _storage_error("HEAD", bucket, exc) from exc
        except BotoCoreError as exc:
            raise _storage_error("HEAD", bucket, exc) from exc
        return ObjectInfo(
            size=answer["ContentLength"],
            etag=answer.get("ETag", "").strip('"'),
            content_type=answer.get("ContentType"),
        )

    def upload_file(self, path: Path, key: str, content_type: str) -> None:
        """Put a local file into the output bucket, in parallel parts when large."""
        try:
            self.client.upload_file(
                str(path),
                self.output_bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=_TRANSFER,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("upload", self.output_bucket, exc) from exc

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        """Fetch an object to a local file, in parallel ranged GETs when large."""
        try:
            self.client.download_file(bucket, key, str(path), Config=_TRANSFER)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("download", bucket, exc) from exc

    def list_objects(
        self, bucket: str, prefix: str
    ) -> Iterator[tuple[str, ObjectInfo]]:
        """Every object under `prefix`, in whatever order storage lists them."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    info = ObjectInfo(
                        size=item["Size"],
                        etag=item.get("ETag", "").strip('"'),
                        content_type=None,
                    )
                    yield item["Key"], info
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("list", bucket, exc) from exc

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many were deleted."""
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                    deleted += len(keys)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("delete", bucket, exc) from exc
        return deleted

    def ensure_buckets(self) -> None:
        """Create the upload and output buckets when they do not exist yet."""
        for bucket in (self.upload_bucket, self.output_bucket):
            try:
                self.client.head_bucket(Bucket=bucket)
                continue
            except ClientError as exc:
                if _status(exc) not in (403, 404):
                    raise _storage_error("HEAD bucket", bucket, exc) from exc
            logger.info("creating bucket %s", bucket)
            self.client.create_bucket(Bucket=bucket)

    def check(self) -> None:
        """Raise `StorageError` unless the upload bucket answers."""
        try:
            self.client.head_bucket(Bucket=self.upload_bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("HEAD bucket", self.upload_bucket, exc) from exc

    def multipart_writer(self, key: str, content_type: str) -> MultipartWriter:
        """A writer that streams bytes into `key` of the upload bucket in parts."""
        return MultipartWriter(self, key, content_type)


class MultipartWriter:
    """Streams an object of unknown length into the upload bucket.

    Bytes are buffered up to one part (8 MiB) and sent as S3 multipart parts, so
    memory stays bounded whatever the object's size. `abort()` removes what was
    sent; `close()` completes the object and returns its size.
    """

    def __init__(self, storage: Storage, key: str, content_type: str):
        self.client = storage.client
        self.bucket = storage.upload_bucket
        self.key = key
        self.size = 0
        self._buffer = bytearray()
        self._parts: list[dict] = []
        try:
            answer = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("create multipart", self.bucket, exc) from exc
        self.upload_id = answer["UploadId"]

    def write(self, data: bytes) -> None:
        """Append bytes, sending a part each time a full one is buffered."""
        self._buffer.extend(data)
        self.size += len(data)
        while len(self._buffer) >= defaults.MULTIPART_CHUNK_BYTES:
            chunk = bytes(self._buffer[: defaults.MULTIPART_CHUNK_BYTES])
            del self._buffer[: defaults.MULTIPART_CHUNK_BYTES]
            self._send(chunk)

    def close(self) -> int:
        """Send the last part and complete the object; returns its size in bytes."""
        if self._buffer or not self._parts:
            self._send(bytes(self._buffer))
            self._buffer.clear()
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("complete multipart", self.bucket, exc) from exc
        return self.size

    def abort(self) -> None:
        """Drop the parts sent so far; never raises."""
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except (ClientError, BotoCoreError):
            logger.warning("could not abort multipart upload of %s", self.key)

    def _send(self, chunk: bytes) -> None:
        number = len(self._parts) + 1
        try:
            answer = self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=chunk,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("upload part", self.bucket, exc) from exc
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _storage_error(action: str, bucket: str, exc: Exception) -> StorageError:
    # botocore messages can carry the request URL; keep only the class and status.
    detail = type(exc).__name__
    if isinstance(exc, ClientError):
        detail = (
            f"{exc.response.get('Error', {}).get('Code', 'error')} ({_status(exc)})"
        )
    return StorageError(f"storage {action} on bucket {bucket} failed: {detail}")

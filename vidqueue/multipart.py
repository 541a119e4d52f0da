"""S3 multipart uploads that a client drives: it sends the parts, we sign them.

The server creates the upload under a key it chose, signs one URL per part
(a PUT of that part's bytes, valid for minutes), lists the parts storage has,
completes the object from the parts the client names, or aborts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from vidqueue.errors import InvalidRequest
from vidqueue.storage import Storage, _status, _storage_error


@dataclass(frozen=True)
class Part:
    """One part that storage holds."""

    number: int
    etag: str
    size: int


class MultipartUploads:
    """Client-driven multipart uploads into the upload bucket."""

    def __init__(self, storage: Storage):
        self.client = storage.client
        self.bucket = storage.upload_bucket

    def create(self, key: str, content_type: str) -> str:
        """Start a multipart upload of `key`; returns its UploadId."""
        try:
            answer = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error("create multipart", self.bucket, exc) from exc
        return answer["UploadId"]

    def presign_part(
        self, key: str, upload_id: str, number: int, expires_s: int
    ) -> str:
        """A URL that PUTs the bytes of part `number`, valid for `expires_s`."""
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
            },
            ExpiresIn=expires_s,
            HttpMethod="PUT",
        )

    def parts(self, key: str, upload_id: str) -> list[Part]:
        """Every part storage holds, in part order (all pages of ListParts)."""
        parts: list[Part] = []
        marker = 0
        while True:
            answer = self._call(
                "list parts",
                self.client.list_parts,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumberMarker=marker,
            )
            parts += [
                Part(item["PartNumber"], item["ETag"], item["Size"])
                for item in answer.get("Parts", [])
            ]
            if not answer.get("IsTruncated"):
                return parts
            marker = int(answer["NextPartNumberMarker"])

    def complete(self, key: str, upload_id: str, parts: list[Part]) -> str:
        """Join `parts` into the object; returns storage's location of it."""
        answer = self._call(
            "complete multipart",
            self.client.complete_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]
            },
        )
        return answer.get("Location", "")

    def abort(self, key: str, upload_id: str) -> None:
        """Drop the upload and every part sent so far."""
        self._call(
            "abort multipart",
            self.client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
        )

    def _call(self, action: str, method, **params) -> dict:
        try:
            return method(**params)
        except ClientError as exc:
            if _status(exc) in (400, 404):
                code = exc.response.get("Error", {}).get("Code", "error")
                raise InvalidRequest(f"storage refused to {action}: {code}") from None
            raise _storage_error(action, self.bucket, exc) from exc
        except BotoCoreError as exc:
            raise _storage_error(action, self.bucket, exc) from exc

"""A small client of the public API, as a browser would use it."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from vidqueue import defaults
from vidqueue.errors import VidqueueError

UPLOAD_CHUNK_BYTES = 256 * 1024


class ApiError(VidqueueError):
    """Raised when the API answers with an error."""

    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        detail = body.get("detail") or body.get("error") or "error"
        super().__init__(f"API answered {status}: {detail}")


class ApiUnreachable(VidqueueError):
    """Raised when nothing answers at the API's address."""


class Client:
    """Talks to a vidqueue API at `base_url`."""

    def __init__(self, base_url: str, token: str | None = None, timeout_s: float = 30):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        """Close the connections."""
        self.http.close()

    def _send(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"cannot reach the API at {self.http.base_url}: {exc}"
            ) from None
        return self._json(response)

    def _json(self, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "error", "detail": response.text[:200]}
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def create_upload(self, path: Path, content_type: str | None = None) -> dict:
        """Ask for a presigned PUT for the file at `path`."""
        guessed = mimetypes.guess_type(path.name)[0]
        body = {
            "filename": path.name,
            "contentType": content_type or guessed or "application/octet-stream",
            "size": path.stat().st_size,
        }
        return self._send("POST", "/uploads", json=body)

    def put_object(
        self, ticket: dict, path: Path, on_bytes: Callable[[int], None] | None = None
    ) -> None:
        """Send the file's bytes straight to storage with the ticket's PUT."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as source:
                while chunk := source.read(UPLOAD_CHUNK_BYTES):
                    if on_bytes:
                        on_bytes(len(chunk))
                    yield chunk

        response = httpx.request(
            ticket["method"],
            ticket["url"],
            headers=ticket["headers"],
            content=chunks(),
            timeout=300,
        )
        if response.status_code >= 300:
            raise ApiError(
                response.status_code, {"detail": "storage refused the upload"}
            )

    def complete(self, job_id: str) -> dict:
        """Tell the API that the PUT finished."""
        return self._send("POST", f"/uploads/{job_id}/complete")

    def status(self, job_id: str) -> dict:
        """The job's status."""
        return self._send("GET", f"/status/{job_id}")

    def cancel(self, job_id: str) -> dict:
        """Cancel the job."""
        return self._send("DELETE", f"/jobs/{job_id}")

    def retry(self, job_id: str) -> dict:
        """Requeue a failed or cancelled job."""
        return self._send("POST", f"/jobs/{job_id}/retry")

    def queue_info(self) -> dict:
        """The queue's figures."""
        return self._send("GET", "/queue-info")

    def upload(self, path: Path, on_bytes: Callable[[int], None] | None = None) -> dict:
        """The whole upload: ticket, PUT, complete. Returns the job's status."""
        ticket = self.create_upload(path)
        self.put_object(ticket, path, on_bytes)
        return self.complete(ticket["jobId"])

    def wait(
        self,
        job_id: str,
        on_status: Callable[[dict], None] | None = None,
        timeout_s: float = 3600,
        interval_s: float = 0.5,
    ) -> dict:
        """Poll the status until the job reaches a final state; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(job_id)
            if on_status:
                on_status(status)
            if status["state"] in defaults.FINAL_STATES:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {status['state']} after {timeout_s} s"
                )
            time.sleep(interval_s)

"""infra/terraform creates the buckets, CORS and lifecycle rules vidqueue needs.

The real `terraform` runs on a temporary copy of infra/terraform, so no state
or provider files land in the repository. Apply and destroy go against the
session's S3 server (moto), and the result is read back through the S3 API as
any client would see it. moto keeps CORS and lifecycle rules without acting on
them, so these tests check the rules, not their effect on browsers or objects.

Where providers cannot be downloaded, `VIDQUEUE_TF_PLUGIN_DIR` names a folder
holding `registry.terraform.io/hashicorp/aws/...` for `terraform init`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import TEST_S3_KEY, TEST_S3_SECRET

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"
TERRAFORM = shutil.which("terraform")
ORIGIN = "https://video.example.com"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        TERRAFORM is None,
        reason="terraform is not installed: infra/terraform cannot be checked",
    ),
]


class Terraform:
    """The terraform command in one working folder."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `terraform ARGS`; with `check`, fail the test on a non-zero exit."""
        done = subprocess.run(
            [TERRAFORM, args[0], "-no-color", *args[1:]],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check:
            assert done.returncode == 0, f"terraform {args[0]}:\n{done.stderr}"
        return done

    def init(self) -> None:
        """Install the providers, from the local mirror if there is one."""
        plugin_dir = os.environ.get("VIDQUEUE_TF_PLUGIN_DIR")
        args = ["init", "-input=false"]
        if plugin_dir:
            args.append(f"-plugin-dir={plugin_dir}")
        done = self.run(*args, check=False)
        assert done.returncode == 0, (
            "terraform init failed; offline, set VIDQUEUE_TF_PLUGIN_DIR to a "
            f"provider mirror (scripts/test.sh finds one):\n{done.stderr}"
        )

    def apply(self, variables: dict) -> None:
        """Apply the configuration with these variables."""
        self.run("apply", "-auto-approve", "-input=false", *self._var_file(variables))

    def destroy(self, variables: dict, check: bool = True) -> None:
        """Destroy everything the configuration created."""
        self.run(
            "destroy", "-auto-approve", "-input=false", *self._var_file(variables),
            check=check,
        )  # fmt: skip

    def planned_resources(self, *args: str) -> set[str]:
        """Addresses of the resources that `terraform plan ARGS` would create."""
        lines = self.run("plan", "-input=false", "-json", *args).stdout.splitlines()
        messages = [json.loads(line) for line in lines]
        return {
            message["change"]["resource"]["addr"]
            for message in messages
            if message["type"] == "planned_change"
            and message["change"]["action"] == "create"
        }

    def outputs(self) -> dict:
        """The configuration's outputs, by name."""
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: entry["value"] for name, entry in raw.items()}

    def _var_file(self, variables: dict) -> list[str]:
        path = self.workdir / "test.tfvars.json"
        path.write_text(json.dumps(variables))
        return [f"-var-file={path.name}"]


@pytest.fixture(scope="module")
def plugin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where providers downloaded by one test's init are kept for the next."""
    return tmp_path_factory.mktemp("terraform-plugins")


@pytest.fixture
def terraform(tmp_path: Path, plugin_cache: Path) -> Terraform:
    """Terraform in a fresh copy of infra/terraform, initialised."""
    workdir = tmp_path / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        workdir,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", "*.tfvars", ".terraform.lock.hcl"
        ),
    )
    tf = Terraform(workdir, _terraform_env(plugin_cache))
    tf.init()
    return tf


def _terraform_env(plugin_cache: Path) -> dict[str, str]:
    # Credentials and endpoints come only from the variables each test passes.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_PLUGIN_CACHE_DIR=str(plugin_cache),
    )
    config = os.environ.get("TF_CLI_CONFIG_FILE")
    if config and Path(config).is_file():
        env["TF_CLI_CONFIG_FILE"] = config
    return env


def s3_client(endpoint: str):
    """A plain S3 client of the test server."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=TEST_S3_KEY,
        aws_secret_access_key=TEST_S3_SECRET,
    )


def error_code(call, **params) -> str | None:
    """The S3 error code that `call(**params)` answers with, or None."""
    try:
        call(**params)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


def rules_by_id(rules: list[dict]) -> dict[str, dict]:
    return {rule["ID"]: rule for rule in rules}


def test_configuration_is_formatted_and_valid(terraform):
    formatted = terraform.run("fmt", "-check", "-recursive", "-diff", check=False)
    assert formatted.returncode == 0, f"run terraform fmt:\n{formatted.stdout}"

    validated = json.loads(terraform.run("validate", "-json").stdout)
    assert validated["valid"], validated["diagnostics"]
    assert validated["warning_count"] == 0, validated["diagnostics"]


def test_examples_plan_the_documented_resources(terraform):
    credentials = ["-var=access_key=example", "-var=secret_key=example"]
    buckets = {'aws_s3_bucket.bucket["upload"]', 'aws_s3_bucket.bucket["output"]'}

    storj = terraform.planned_resources(
        "-var-file=examples/storj.tfvars.example", *credentials
    )
    assert storj == buckets

    minio = terraform.planned_resources(
        "-var-file=examples/minio.tfvars.example", *credentials
    )
    assert minio == buckets | {'aws_s3_bucket_lifecycle_configuration.bucket["upload"]'}


def test_cors_without_origins_is_refused(terraform):
    planned = terraform.run(
        "plan", "-input=false", "-var=endpoint=https://s3.example.com",
        "-var=access_key=example", "-var=secret_key=example", check=False,
    )  # fmt: skip

    assert planned.returncode != 0
    assert "cors_allowed_origins" in planned.stderr


def test_apply_and_destroy_on_an_s3_endpoint(terraform, s3_server):
    s3 = s3_client(s3_server.url)
    name = uuid.uuid4().hex[:10]
    upload, output = f"tf-{name}-uploads", f"tf-{name}-videos"
    variables = {
        "endpoint": s3_server.url,
        "access_key": TEST_S3_KEY,
        "secret_key": TEST_S3_SECRET,
        "upload_bucket": upload,
        "output_bucket": output,
        "cors_allowed_origins": [ORIGIN],
        "upload_expiry_days": 3,
        "abort_multipart_days": 2,
        "force_destroy": True,
    }
    destroyed = False
    try:
        terraform.apply(variables)
        _check_everything_on(s3, upload, output)
        assert terraform.outputs()["vidqueue_settings"] == {
            "VIDQUEUE_S3_ENDPOINT": s3_server.url,
            "VIDQUEUE_S3_REGION": "us-east-1",
            "VIDQUEUE_UPLOAD_BUCKET": upload,
            "VIDQUEUE_OUTPUT_BUCKET": output,
        }

        # Switched off, as for gateways that lack these APIs: rules go away,
        # buckets and their objects stay.
        s3.put_object(Bucket=upload, Key="u/local/job/clip.mp4", Body=b"video")
        terraform.apply({**variables, "enable_cors": False, "enable_lifecycle": False})
        _check_everything_off(s3, upload, output)
        assert s3.get_object(Bucket=upload, Key="u/local/job/clip.mp4")["Body"].read()

        terraform.destroy(variables)
        destroyed = True
        remaining = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
        assert upload not in remaining
        assert output not in remaining
    finally:
        if not destroyed:
            terraform.destroy(variables, check=False)


def _check_everything_on(s3, upload: str, output: str) -> None:
    [upload_cors] = s3.get_bucket_cors(Bucket=upload)["CORSRules"]
    assert {"PUT", "POST"} <= set(upload_cors["AllowedMethods"])
    assert upload_cors["AllowedOrigins"] == [ORIGIN]
    assert "ETag" in upload_cors["ExposeHeaders"]

    [output_cors] = s3.get_bucket_cors(Bucket=output)["CORSRules"]
    assert set(output_cors["AllowedMethods"]) == {"GET", "HEAD"}
    assert output_cors["AllowedOrigins"] == [ORIGIN]

    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=upload)
    upload_rules = rules_by_id(lifecycle["Rules"])
    assert upload_rules["expire-raw-uploads"]["Status"] == "Enabled"
    assert upload_rules["expire-raw-uploads"]["Expiration"] == {"Days": 3}
    abort = upload_rules["abort-incomplete-multipart-uploads"]
    assert abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}

    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=output)
    output_rules = rules_by_id(lifecycle["Rules"])
    assert set(output_rules) == {"abort-incomplete-multipart-uploads"}


def _check_everything_off(s3, upload: str, output: str) -> None:
    for bucket in (upload, output):
        assert error_code(s3.head_bucket, Bucket=bucket) is None
        assert (
            error_code(s3.get_bucket_cors, Bucket=bucket) == "NoSuchCORSConfiguration"
        )
        assert (
            error_code(s3.get_bucket_lifecycle_configuration, Bucket=bucket)
            == "NoSuchLifecycleConfiguration"
        )

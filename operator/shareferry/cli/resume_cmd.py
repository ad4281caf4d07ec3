"""``shareferry jobs resume ID``: run a copy or sync job again from its plan.

The plan holds the source, destination and options, never a secret: SAS tokens are given again
(``--source-sas`` / ``--destination-sas``, AzCopy's flags), or the environment supplies the
credentials as it did the first time. Files the plan holds as done are counted as completed and
not sent again; the summary counts the whole job. Output and exit status as ``copy``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shareferry.cli import copy_cmd, sync_cmd
from shareferry.cli.job_runner import add_output_flags, execute, job_log_settings
from shareferry.cli.jobs_cmd import add_jobs_subcommand
from shareferry.cli.output import JobOutput
from shareferry.core.accounting import Subscriber
from shareferry.core.errors import UsageError

if TYPE_CHECKING:
    from shareferry.core.jobs import CopyRequest, JobSummary, SyncRequest

NAME = "resume"

DESCRIPTION = """\
Run a job again from its plan (shareferry jobs list shows the ids; a unique prefix of 8 or more
characters will do). Files it already finished are not sent again. Give SAS tokens again with
--source-sas / --destination-sas: plans never keep them."""


def register(subcommands: Any) -> None:
    parser = add_jobs_subcommand(
        subcommands, NAME, help="resume a copy or sync job from its plan", description=DESCRIPTION
    )
    parser.add_argument("job_id", metavar="ID", help="the job to resume")
    parser.add_argument("--source-sas", metavar="SAS", help="SAS token for the source URL")
    parser.add_argument("--destination-sas", metavar="SAS", help="SAS token for the destination URL")
    add_output_flags(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    found: dict[str, str] = {}

    def build(parsed: argparse.Namespace, environ: Mapping[str, str]) -> CopyRequest | SyncRequest:
        from shareferry.core.jobplan import JobPlan, job_dir_from_env
        from shareferry.core.jobs import resume_request

        logging = job_log_settings(parsed)  # the run appends to the job's log file
        for flag, value in (
            ("--source-sas", parsed.source_sas),
            ("--destination-sas", parsed.destination_sas),
        ):
            if value is not None and "sig=" not in value:
                raise UsageError(f"{flag} is not a SAS token (it has no signature)")
        with JobPlan.open(job_dir_from_env(environ), parsed.job_id) as plan:
            record = plan.record
        found["job_id"] = record.job_id
        request = resume_request(record, source_sas=parsed.source_sas, destination_sas=parsed.destination_sas)
        return dataclasses.replace(request, logging=logging)

    async def start(
        request: CopyRequest | SyncRequest,
        output: JobOutput,
        subscribers: list[Subscriber],
        environ: Mapping[str, str],
        job_id: str,
    ) -> JobSummary:
        from shareferry.core.jobs import SyncRequest

        if isinstance(request, SyncRequest):
            return await sync_cmd.start(request, output, subscribers, environ, found["job_id"], resume=True)
        return await copy_cmd.start(request, output, subscribers, environ, found["job_id"], resume=True)

    return execute(args, command="jobs resume", build=build, start=start, job_id_from=lambda: found["job_id"])

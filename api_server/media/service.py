"""Media files become tasks: one task per file, its URL in the config's field for that kind of media.

The field is the `value="$..."` of the config's object tag that shows the file's kind (Image
for images, Audio/AudioPlus for audio, Video, Pdf). A media task holds only that field, so
one project can take images and audio (a config with an Image and an Audio tag); the config's
other fields (a `$caption` of a Text tag, say) are still required, and then a media file is
refused naming the file, as any task lacking a field is.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api_server.common.errors import BadRequest
from api_server.db.models import MediaFile, StorageLink, Task
from api_server.imports.service import ImportJob
from api_server.imports.validation import TaskValidator
from api_server.labelconfig.parser import LabelConfigError, LabelInterface, parse
from api_server.media import sniff
from api_server.media.multipart import StoredMedia
from api_server.media.store import Target, url_of

# Object tags that show each family of media.
TAGS = {"image": ("Image",), "audio": ("Audio", "AudioPlus"), "video": ("Video",), "pdf": ("Pdf",)}
_MEDIA_TAGS = {tag for tags in TAGS.values() for tag in tags}


class MediaTasks:
    """Adds media files to an import job; built once per request."""

    def __init__(self, job: ImportJob, target: Target) -> None:
        self.job = job
        self.target = target
        try:
            self.interface: LabelInterface | None = parse(job.project.label_config)
        except LabelConfigError:
            self.interface = None
        self.validators: dict[str, tuple[str, TaskValidator]] = {}
        self.upload_ids: list[tuple[int, StoredMedia]] = []

    def _field(self, media: StoredMedia) -> tuple[str, TaskValidator]:
        family = sniff.family(media.content_type)
        if family in self.validators:
            return self.validators[family]
        objects = list(self.interface.objects.values()) if self.interface else []
        names = sorted({o.variable for o in objects if o.tag in TAGS[family] and o.variable})
        tags = " or ".join(TAGS[family])
        if not names:
            raise BadRequest(
                f"{media.original_name}: the label config has no {tags} tag to show {family} files",
                validation_errors={media.original_name: [f"no {tags} tag in the label config"]},
            )
        if len(names) > 1:
            shown = ", ".join(f"${n}" for n in names)
            raise BadRequest(
                f"{media.original_name}: the label config shows {family} from several fields ({shown}); "
                "import a JSON or CSV task file that fills each",
                validation_errors={media.original_name: [f"several {tags} fields: {shown}"]},
            )
        others = {o.variable for o in objects if o.tag in _MEDIA_TAGS and o.variable}
        required = (self.job.variables - others) | {names[0]}
        self.validators[family] = (names[0], TaskValidator(required))
        return self.validators[family]

    def add(self, media: StoredMedia) -> None:
        """One file: its FileUpload (Label Studio's record), its media row, its task. Runs in a worker thread."""
        field, validator = self._field(media)
        job = self.job
        upload_id = job.add_file_upload(media.original_name, media.size, sniff.EXTENSIONS[media.content_type][1:])
        # add_file_upload left the writer idle, so the session is ours until the task is added.
        job.session.add(
            MediaFile(
                project_id=job.project.id,
                file_upload_id=upload_id,
                name=media.name,
                original_name=media.original_name[:500],
                content_type=media.content_type,
                size=media.size,
                storage_id=self.target.bucket.storage_id if self.target.bucket and media.key else None,
                key=media.key,
            )
        )
        job.session.flush()
        job.add([(1, {field: url_of(job.project.id, media.name)})], f"{media.original_name}: ", validator)
        if media.key is not None:
            self.upload_ids.append((upload_id, media))

    def link(self, session: Session) -> None:
        """Bucket objects are linked to their tasks, so a sync of the storage never imports them again.

        Called before the import commits, when every task is written.
        """
        if not self.upload_ids or self.target.bucket is None:
            return
        by_upload = dict(self.upload_ids)
        first = self.job.writer.task_ids.runs[0][0]
        rows = session.execute(
            select(Task.id, Task.file_upload_id).where(
                Task.project_id == self.job.project.id, Task.id >= first, Task.file_upload_id.in_(list(by_upload))
            )
        )
        storage_id = self.target.bucket.storage_id
        session.add_all(
            StorageLink(storage_id=storage_id, task_id=task_id, key=by_upload[upload].key, etag=by_upload[upload].etag)
            for task_id, upload in rows
            if upload is not None  # never: the query asks for uploads in by_upload
        )
        session.flush()

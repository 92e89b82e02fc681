"""What image data really is, decided while it streams in.

Every format inspector of oslo.utils sees the data chunk by chunk (each keeps
only the few header bytes it needs). Once every inspector has seen enough, the
format is settled and the rest of the stream is not inspected; a refusal is
raised then, so a mismatched upload stops early instead of after the last byte.

The rules are Glance's (``require_image_format_match``), with one stricter
case: data declared ``raw`` that is really a format with its own structure
(qcow2, vmdk, ...) is refused, because a hypervisor told "raw" would hand the
guest that structure, and one told the truth would follow its backing file.
Raw disks with a partition table (gpt), ISO images and LUKS containers (Cinder
uploads encrypted volumes as raw) stay acceptable as raw.
"""

from __future__ import annotations

import logging

from oslo_utils.imageutils import format_inspector

from stackbox import rest

LOG = logging.getLogger(__name__)

# Formats that are plain block devices to a hypervisor reading "raw".
RAW_COMPATIBLE = frozenset({"raw", "gpt", "iso", "luks"})


class InvalidImageData(rest.BadRequest):
    """The data does not match its declared disk_format, or is unsafe to use."""


class Inspection:
    """Feeds a stream to every inspector and judges the result against a disk_format."""

    def __init__(self, disk_format: str | None, require_match: bool = True) -> None:
        self.disk_format = disk_format
        self.require_match = require_match
        self._inspectors = [kind() for kind in format_inspector.ALL_FORMATS.values()]
        self._failed: set[format_inspector.FileInspector] = set()
        self._settled = False
        self._finished = False
        self._detected: format_inspector.FileInspector | None = None

    def feed(self, chunk: bytes) -> None:
        """Inspect the next chunk; raise InvalidImageData as soon as the verdict is clear."""
        if self._settled:
            return
        for inspector in self._inspectors:
            if inspector in self._failed:
                continue
            try:
                inspector.eat_chunk(chunk)
            except Exception as exc:
                # An inspector that cannot parse the data rules its format out.
                LOG.debug("format inspector %s gave up: %s", inspector, exc)
                self._failed.add(inspector)
        if self._matches() is not None:
            self._settled = True
            self._judge()

    def finish(self) -> None:
        """The stream ended: judge what was seen (raises InvalidImageData)."""
        if self._finished:
            return
        self._finished = True
        if not self._settled:
            for inspector in self._inspectors:
                inspector.finish()
            self._settled = True
            self._judge()

    def virtual_size(self, size: int) -> int | None:
        """The image's virtual size once finished (``size`` is the byte count)."""
        detected = self._detected
        if detected is None:
            return None
        if str(detected) == "raw" or (
            self.disk_format == "raw" and str(detected) in RAW_COMPATIBLE
        ):
            return size
        if str(detected) == self.disk_format:
            return int(detected.virtual_size) or None
        return None

    @property
    def detected(self) -> str | None:
        return str(self._detected) if self._detected is not None else None

    def _matches(self) -> list[format_inspector.FileInspector] | None:
        """The specific formats that matched (raw alone if none), or None if undecided."""
        specific = [i for i in self._inspectors if i.NAME != "raw"]
        if not self._finished and not all(i.complete for i in specific):
            return None
        found = [i for i in specific if i.format_match]
        if not found:
            return [i for i in self._inspectors if i.NAME == "raw"]
        return found

    def _judge(self) -> None:
        matches = self._matches() or []
        names = {str(i) for i in matches}
        if names == {"iso", "gpt"}:
            # Bootable ISOs legitimately carry a GPT in front.
            detected = next(i for i in matches if str(i) == "iso")
        elif len(matches) > 1:
            self._mismatch(f"Multiple formats detected in the data: {', '.join(sorted(names))}.")
            return
        else:
            detected = matches[0]
        self._detected = detected
        found = str(detected)
        declared = self.disk_format
        if found != declared and not (
            (found == "raw" and declared not in format_inspector.ALL_FORMATS)
            or (declared == "raw" and found in RAW_COMPATIBLE)
        ):
            self._mismatch(
                f"Image disk_format {declared} does not match the uploaded data, which is {found}."
            )
        try:
            detected.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            reasons = "; ".join(f"{name}: {err}" for name, err in sorted(exc.failures.items()))
            raise InvalidImageData(f"Image ({found}) failed safety checks: {reasons}.") from None
        except format_inspector.ImageFormatError as exc:
            self._mismatch(f"Image format inspection failed: {exc}.")

    def _mismatch(self, message: str) -> None:
        if self.require_match:
            raise InvalidImageData(message)
        LOG.warning("accepting image data despite: %s", message)

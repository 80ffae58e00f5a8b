"""POST /v1/tool-output/{tool}: a host reports what a tool call returned, to be scanned."""

from __future__ import annotations

import json

from aiohttp import web

from rampartd.errors import BadRequest
from rampartd.outputs import record_output
from rampartd.web.keys import SERVICE
from rampartd.web.parse import check_fields, query, read_json
from rampartd.web.tools import CALL_FIELDS, call_from_body

OUTPUT_FIELDS = (*CALL_FIELDS, "output")


async def tool_output(request: web.Request) -> web.Response:
    """Scan the output (secrets, injection markers); record findings and a handed ask's outcome."""
    query(request, ())
    body = await read_json(request)
    check_fields(body, OUTPUT_FIELDS)
    if "output" not in body:
        raise BadRequest("field 'output' is required", code="missing_field")
    call = call_from_body(request, body)
    output = body["output"]
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    report = await record_output(request.app[SERVICE], call, text)
    return web.json_response(report.answer())

"""POST /v1/tool-output/{tool}: a host reports what a tool call returned, to be scanned."""

from __future__ import annotations

import json

from aiohttp import web

from rampartd.outputs import record_output
from rampartd.web.keys import SERVICE
from rampartd.web.parse import bad_field, check_fields, path_tool, query, read_json
from rampartd.web.tools import CALL_FIELDS, call_from_body

OUTPUT_FIELDS = (*CALL_FIELDS, "output")


async def tool_output(request: web.Request) -> web.Response:
    """Scan the output (secrets, injection markers); record findings and a handed ask's outcome."""
    query(request, ())
    tool = path_tool(request)
    body = await read_json(request)
    check_fields(body, OUTPUT_FIELDS)
    if "output" not in body:
        raise bad_field("output", "is required")
    call = call_from_body(request, tool, body)
    output = body["output"]
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    report = await record_output(request.app[SERVICE], call, text)
    return web.json_response(report.answer())

"""Host tool names → rampartd tool classes: one table for the daemon and every hook.

Agent hosts name the same tools differently (`Bash`, `run_shell_command`, `exec_command`…).
Policies speak of rampartd's classes (`exec`, `read`, `write`, `edit`, `delete`, `grep`,
`glob`, `fetch`, `mcp`; `task` for subagents, `todo` for the agent's plan), so a call is
evaluated under its class whichever host sent it. A name not in the table keeps its own name
(the engine judges such a call by its arguments). Pure data and a few functions: hooks
import it without loading the engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# name → class; lookups are exact first, then case-insensitive.
TOOL_CLASSES: Mapping[str, str] = {
    # shells
    "exec": "exec", "bash": "exec", "shell": "exec", "run_shell_command": "exec",
    "run_terminal_cmd": "exec", "exec_command": "exec", "local_shell": "exec",
    "execute_command": "exec", "write_stdin": "exec",  # (text typed into a running shell)
    "run_in_terminal": "exec", "runinterminal": "exec", "run_command": "exec",
    "execute_bash": "exec",
    # code runners: their `code` is judged as the interpreter line that runs it
    "execute_ipython_cell": "exec", "run_python": "exec", "execute_python": "exec",
    "run_code": "exec", "execute_code": "exec", "code_interpreter": "exec",
    # file reads
    "read": "read", "read_file": "read", "read_many_files": "read", "view": "read",
    "notebookread": "read", "read_text_file": "read", "read_multiple_files": "read",
    "read_media_file": "read", "view_file": "read", "view_code_item": "read",
    # file writes and edits
    "write": "write", "write_file": "write", "write_to_file": "write", "edit": "edit",
    "multiedit": "edit", "notebookedit": "edit", "replace": "edit", "replace_in_file": "edit",
    "edit_file": "edit", "apply_patch": "edit", "strreplace": "edit", "str_replace": "edit",
    "search_replace": "edit", "insert_edit_into_file": "edit",
    "replace_string_in_file": "edit", "create_file": "write", "create_directory": "write",
    # a move or copy reads its source and writes its destination
    "move_file": "edit", "copy_file": "edit", "rename_file": "edit",
    # Anthropic's text editor tool: `command` view reads `path`, the others write it
    "str_replace_based_edit_tool": "edit", "str_replace_editor": "edit",
    # file deletions (a `delete` effect on every path argument)
    "delete_file": "delete", "delete": "delete", "remove_file": "delete",
    "delete_directory": "delete",
    # content searches (a regex over the files under a path)
    "grep": "grep", "search_file_content": "grep", "grep_search": "grep",
    "search_files": "grep", "codebase_search": "grep", "list_code_definition_names": "grep",
    # name searches and listings (a glob or a directory)
    "glob": "glob", "ls": "glob", "list_directory": "glob", "list_files": "glob",
    "file_search": "glob", "list_dir": "glob", "find_by_name": "glob",
    # network
    "fetch": "fetch", "webfetch": "fetch", "web_fetch": "fetch", "websearch": "fetch",
    "google_web_search": "fetch", "web_search": "fetch", "browser_action": "fetch",
    "read_url_content": "fetch", "fetch_webpage": "fetch", "search_web": "fetch",
    "mcp": "mcp", "use_mcp_tool": "mcp", "access_mcp_resource": "mcp",
    # subagents and the agent's own plan (no file or network effects of their own)
    "task": "task", "todowrite": "todo", "todo_write": "todo", "write_todos": "todo",
    "update_plan": "todo",
}
_FOLDED = {name.lower(): cls for name, cls in TOOL_CLASSES.items()}
# rampartd's classes; a tool name the table does not know keeps its own name as its class
CLASSES = frozenset(TOOL_CLASSES.values())
# The classes an MCP server's tool takes from its own name (their arguments are read the same)
_MCP_CLASSES = frozenset({"exec", "read", "write", "edit", "delete", "grep", "glob", "fetch"})
# readers that read a directory they are given whole (Gemini CLI's read_many_files)
WHOLE_DIRECTORY_READERS = frozenset({"read_many_files"})

# the argument names a URL goes by (any case), and the URLs a fetch reaches
URL_KEYS = frozenset({"url", "urls", "uri", "href", "link", "endpoint"})
_URL = re.compile(r"(?i)(https?|wss?|ftp)://|file:")
# The written text of a file tool under the names other hosts give it, read as rampartd's
# (`params: {content: …}` also holds for the text editor tool's `file_text`).
CONTENT_ALIASES: Mapping[str, Mapping[str, str]] = {
    "write": {"file_text": "content", "contents": "content"},
    # Cursor's `code_edit`, Cline's SEARCH/REPLACE `diff`, NotebookEdit's `new_source`,
    # Copilot's inserted `code`
    "edit": {"file_text": "content", "new_str": "new_string", "code_edit": "content",
             "diff": "content", "new_source": "new_string", "code": "new_string",
             "contents": "content"},
}


def call_class(tool_class: str, params: Mapping[str, object]) -> str:
    """The class of one call to a tool of tool_class: a text editor tool's `view` command
    (str_replace_based_edit_tool) only reads; an MCP tool given a URL (a browser's navigate,
    an HTTP client's request) fetches it, and a fetch of a `file:` URL reads that file."""
    if tool_class == "edit" and params.get("command") == "view":
        return "read"
    if tool_class not in ("fetch", "mcp") and tool_class in CLASSES:
        return tool_class
    url = next((v for k, v in params.items() if k.lower() in URL_KEYS and isinstance(v, str)),
               None)
    if url is None or not _URL.match(url):
        return tool_class
    return "read" if url[:5].lower() == "file:" else "fetch"



def class_params(tool_class: str, params: Mapping[str, object]) -> Mapping[str, object]:
    """params, with a file tool's written text also under rampartd's name for it (MultiEdit's
    `edits`: every new_string, one per line; the MCP filesystem server's `newText`)."""
    aliases = CONTENT_ALIASES.get(tool_class)
    edits = params.get("edits") if tool_class == "edit" else None
    if not aliases or not (isinstance(edits, list) or any(name in params for name in aliases)):
        return params
    out = dict(params)
    for name, ours in aliases.items():
        if name in params and ours not in params:
            out[ours] = params[name]
    if isinstance(edits, list) and "new_string" not in params:
        texts = [e.get("new_string", e.get("newText")) for e in edits if isinstance(e, dict)]
        out["new_string"] = "\n".join(t for t in texts if isinstance(t, str))
    return out


def tool_class(name: str) -> str:
    """The class a host tool name is evaluated under (`mcp__srv__tool` → `mcp`)."""
    cls = TOOL_CLASSES.get(name) or _FOLDED.get(name.lower())
    if cls is not None:
        return cls
    if name.startswith("mcp__"):
        # a server's tool named like a file, shell or fetch tool is one (mcp__fs__write_file);
        # policies naming `mcp` still cover it (PolicySet.plan_for)
        inner = name.rsplit("__", 1)[-1]
        cls = TOOL_CLASSES.get(inner) or _FOLDED.get(inner.lower())
        return cls if cls in _MCP_CLASSES else "mcp"
    return name

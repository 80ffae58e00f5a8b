"""What each call of each language does to files, programs and the network: data, not code.

An action is `kind where`: kind is run (a command line or an argument vector), cmd (a shell
command line), read, write, delete, chmod, copy (read 0, write 1), move (read and delete 0,
write 1), open (a mode decides read or write; `open WHERE STYLE`), url, urlwrite (url 0, write
1), eval (code), native, socket, fetch. where is a position (`0`), every position (`*`), every
position from one on (`1*`), or a position or a named argument (`1|file`).
"""

from __future__ import annotations

Action = tuple[str, str, str]  # (kind, where, style)


def _table(spec: dict[str, str]) -> dict[str, tuple[Action, ...]]:
    out: dict[str, tuple[Action, ...]] = {}
    for names, actions in spec.items():
        parsed: list[Action] = []
        for action in actions.split(";"):
            kind, _, rest = action.strip().partition(" ")
            where, _, style = rest.partition(" ")
            parsed.append((kind, where or "0", style))
        for name in names.split():
            out[name] = tuple(parsed)
    return out


NODE = _table({
    "child_process.exec child_process.execSync": "cmd 0",
    "child_process.spawn child_process.spawnSync child_process.execFile "
    "child_process.execFileSync Bun.spawn Bun.spawnSync": "run 0",
    "child_process.fork": "read 0",
    "fs.readFileSync fs.readFile fs.createReadStream fs.readdirSync fs.readdir fs.opendirSync "
    "fs.opendir fs.readlinkSync fs.readlink Deno.readTextFile Deno.readFile "
    "Deno.readTextFileSync Deno.readFileSync Deno.readDir Deno.readDirSync Bun.file": "read 0",
    "fs.openSync fs.open": "open 0 node",
    "Deno.open Deno.openSync": "open 0 deno",
    "fs.writeFileSync fs.writeFile fs.appendFileSync fs.appendFile fs.createWriteStream "
    "fs.mkdirSync fs.mkdir fs.truncateSync fs.truncate fs.utimesSync fs.utimes "
    "Deno.writeTextFile Deno.writeFile Deno.writeTextFileSync Deno.writeFileSync Deno.mkdir "
    "Deno.mkdirSync Deno.create Deno.createSync Bun.write": "write 0",
    "fs.copyFileSync fs.copyFile fs.cpSync fs.cp Deno.copyFile Deno.copyFileSync": "copy 0",
    "fs.renameSync fs.rename Deno.rename Deno.renameSync": "move 0",
    "fs.symlinkSync fs.symlink fs.linkSync fs.link Deno.symlink Deno.link": "write 1",
    "fs.rmSync fs.rm fs.unlinkSync fs.unlink fs.rmdirSync fs.rmdir Deno.remove "
    "Deno.removeSync": "delete 0",
    "fs.chmodSync fs.chmod fs.lchmodSync fs.lchmod fs.chownSync fs.chown fs.lchownSync "
    "Deno.chmod Deno.chmodSync Deno.chown Deno.chownSync": "chmod 0",
    "fetch axios axios.get axios.post axios.put axios.patch axios.delete axios.head "
    "http.get https.get http.request https.request got got.get got.post request needle "
    "superagent.get superagent.post undici.request undici.fetch XMLHttpRequest.open": "url 0",
    "WebSocket": "url 0; socket 0",
    "net.connect net.createConnection net.Socket tls.connect dgram.createSocket "
    "Deno.connect Deno.connectTls Bun.connect": "socket 0",
    "eval vm.runInNewContext vm.runInThisContext vm.runInContext vm.Script "
    "vm.compileFunction": "eval 0",
    "Function": "eval -1",
    "process.dlopen Deno.dlopen": "native 0",
    "Deno.Command": "run 0 deno",
    "Deno.run": "run 0 denorun",
})
# Method names distinctive enough to trust whatever the receiver is (`fsp.readFile`, `cp.spawn`).
NODE_TAILS = {name.rsplit(".", 1)[1]: actions for name, actions in NODE.items()
              if name.startswith(("fs.", "child_process.")) and
              name.rsplit(".", 1)[1] not in ("exec", "open", "rm", "link", "cp", "rename")}

PERL = _table({
    "system exec": "run 0",
    "readpipe": "cmd 0",
    "open": "open 1 perl",
    "sysopen": "write 1",
    "unlink rmdir rmtree remove_tree File.Path.rmtree File.Path.remove_tree": "delete *",
    "chmod": "chmod 1*",
    "chown": "chmod 2*",
    "rename File.Copy.move move mv": "move 0",
    "File.Copy.copy copy cp": "copy 0",
    "mkdir make_path mkpath File.Path.make_path File.Path.mkpath": "write *",
    "symlink link": "write 1",
    "truncate": "write 0",
    "opendir": "read 1",
    "do require": "read 0",
    "eval": "eval 0",
    "get head getprint LWP.Simple.get LWP.Simple.head HTTP.Tiny.new.get HTTP.Tiny.new.request "
    "HTTP.Tiny.new.post LWP.UserAgent.new.get LWP.UserAgent.new.post": "url 0",
    "getstore mirror LWP.Simple.getstore LWP.Simple.mirror": "urlwrite 0",
    "IO.Socket.INET.new IO.Socket.IP.new IO.Socket.SSL.new IO.Socket.new socket": "socket 0",
    "DynaLoader.dl_load_file XSLoader.load FFI.Platypus.new FFI.Raw.new": "native 0",
})
PERL_TAILS: dict[str, tuple[Action, ...]] = {}

RUBY = _table({
    "system exec spawn Process.spawn IO.popen Open3.capture2 Open3.capture2e Open3.capture3 "
    "Open3.popen3 Open3.popen2 Open3.popen2e Open3.pipeline PTY.spawn": "run 0",
    "open": "open 0 ruby",
    "File.open File.new IO.open": "open 0 c",
    "File.read IO.read File.readlines IO.readlines File.foreach IO.foreach File.binread "
    "IO.binread Dir.entries Dir.children Dir.glob Dir.each_child Dir.foreach YAML.load_file "
    "JSON.load_file CSV.read CSV.foreach load": "read 0",
    "File.write IO.write File.binwrite IO.binwrite FileUtils.touch FileUtils.mkdir_p "
    "FileUtils.mkdir FileUtils.makedirs Dir.mkdir File.truncate": "write 0",
    "FileUtils.cp FileUtils.cp_r FileUtils.copy FileUtils.copy_file FileUtils.install "
    "FileUtils.copy_entry": "copy 0",
    "FileUtils.mv FileUtils.move File.rename": "move 0",
    "FileUtils.rm FileUtils.rm_f FileUtils.rm_r FileUtils.rm_rf FileUtils.remove "
    "FileUtils.rmdir FileUtils.remove_dir FileUtils.remove_entry FileUtils.remove_entry_secure "
    "FileUtils.rmtree FileUtils.safe_unlink File.delete File.unlink Dir.rmdir Dir.delete "
    "Dir.unlink": "delete *",
    "File.chmod FileUtils.chmod FileUtils.chmod_R File.lchmod": "chmod 1*",
    "File.chown FileUtils.chown FileUtils.chown_R": "chmod 2*",
    "File.symlink File.link FileUtils.ln_s FileUtils.ln FileUtils.ln_sf": "write 1",
    "Net.HTTP.get Net.HTTP.get_response Net.HTTP.start Net.HTTP.get_print URI.open URI "
    "Net.HTTP.post_form Net.HTTP.post HTTParty.get HTTParty.post Faraday.get Faraday.post "
    "RestClient.get RestClient.post": "url 0",
    "TCPSocket.new TCPSocket.open UDPSocket.new Socket.new Socket.tcp TCPServer.new "
    "OpenSSL.SSL.SSLSocket.new": "socket 0",
    "eval instance_eval class_eval module_eval instance_exec binding.eval": "eval 0",
    "Fiddle.dlopen Fiddle.Handle.new ffi_lib": "native 0",
})
RUBY_TAILS: dict[str, tuple[Action, ...]] = {}

PHP = _table({
    "system exec shell_exec passthru popen proc_open pcntl_exec expect_popen": "run 0",
    "file_get_contents file readfile opendir scandir glob parse_ini_file highlight_file "
    "show_source include require include_once require_once fileperms": "read 0",
    "fopen": "open 0 c",
    "file_put_contents mkdir touch tempnam": "write 0",
    "copy": "copy 0",
    "rename": "move 0",
    "unlink rmdir": "delete 0",
    "chmod chown chgrp lchown lchgrp": "chmod 0",
    "symlink link": "write 1",
    "curl_init": "url 0",
    "fsockopen pfsockopen stream_socket_client socket_create socket_connect": "socket 0",
    "eval assert create_function": "eval -1",
    "FFI.cdef FFI.load dl": "native 0",
})
PHP_TAILS: dict[str, tuple[Action, ...]] = {}

LUA = _table({
    "os.execute io.popen": "cmd 0",
    "io.open": "open 0 c",
    "io.lines dofile loadfile io.input": "read 0",
    "io.output": "write 0",
    "os.remove": "delete 0",
    "os.rename": "move 0",
    "load loadstring": "eval 0",
    "package.loadlib": "native 0",
    "socket.connect socket.tcp socket.udp socket.tcp4 socket.tcp6": "socket 0",
    "http.request socket.http.request ssl.https.request": "url 0",
})
LUA_TAILS: dict[str, tuple[Action, ...]] = {}

R = _table({
    "system shell pipe": "cmd 0",
    "system2": "run 0 r2",
    "readLines readRDS read.csv read.csv2 read.table read.delim scan source load list.files "
    "dir readr.read_csv read_csv jsonlite.fromJSON fromJSON readChar readBin "
    "file.info": "read 0|file",
    "file": "open 0 r",
    "write saveRDS write.csv write.csv2 write.table writeBin writeChar": "write 1|file",
    "writeLines": "write 1|con",
    "save": "write |file",
    "cat": "write |file",
    "sink file.create dir.create Sys.setFileTime file.symlink": "write 0",
    "file.copy": "copy 0",
    "file.rename": "move 0",
    "file.append": "write 0; read 1",
    "unlink file.remove": "delete *",
    "Sys.chmod Sys.umask": "chmod 0",
    "download.file utils.download.file": "urlwrite 0",
    "url curl.curl curl.curl_download httr.GET httr.POST GET POST RCurl.getURL "
    "getURL": "url 0",
    "eval evalq": "eval 0",
    "parse str2lang str2expression": "eval |text",
    "socketConnection make.socket": "socket 0",
    "dyn.load library.dynam": "native 0",
})
R_TAILS: dict[str, tuple[Action, ...]] = {}

APPLESCRIPT = _table({
    "doShellScript": "cmd 0",
    "run script": "eval 0",
})
APPLESCRIPT_TAILS = {"doShellScript": APPLESCRIPT["doShellScript"]}

AWK = _table({
    "system": "cmd 0",
})

PYTHON = _table({
    "os.system os.popen subprocess.getoutput subprocess.getstatusoutput": "cmd 0",
    "subprocess.run subprocess.call subprocess.check_call subprocess.check_output "
    "subprocess.Popen pty.spawn": "run 0",
    "open io.open codecs.open": "open 0 c",
    "os.remove os.unlink os.rmdir os.removedirs shutil.rmtree": "delete 0",
    "shutil.copy shutil.copy2 shutil.copyfile shutil.copytree": "copy 0",
    "shutil.move os.rename os.replace": "move 0",
    "os.chmod os.chown": "chmod 0",
    "eval exec compile": "eval 0",
    "urllib.request.urlopen requests.get requests.post httpx.get httpx.post": "url 0",
    "socket.socket socket.create_connection": "socket 0",
    "ctypes.CDLL ctypes.cdll.LoadLibrary": "native 0",
})

TABLES: dict[str, tuple[dict[str, tuple[Action, ...]], dict[str, tuple[Action, ...]]]] = {
    "node": (NODE, NODE_TAILS), "perl": (PERL, PERL_TAILS), "ruby": (RUBY, RUBY_TAILS),
    "php": (PHP, PHP_TAILS), "lua": (LUA, LUA_TAILS), "r": (R, R_TAILS),
    "applescript": (APPLESCRIPT, APPLESCRIPT_TAILS), "awk": (AWK, {}), "python": (PYTHON, {}),
}

# Modules whose loading alone says something about the code.
NATIVE_MODULES = frozenset({"ffi", "ffi-napi", "koffi", "node-ffi", "fiddle", "FFI",
                            "FFI::Platypus", "FFI::Raw", "DynaLoader", "ctypes", "cffi"})
SOCKET_MODULES = frozenset({"socket", "IO::Socket", "IO::Socket::INET", "IO::Socket::IP",
                            "IO::Socket::SSL"})
FETCH_MODULES = frozenset({"LWP::Simple", "LWP::UserAgent", "HTTP::Tiny", "net/http", "open-uri",
                           "httparty", "faraday", "rest-client", "socket.http", "ssl.https",
                           "httr", "curl", "RCurl", "axios", "node-fetch", "got", "request",
                           "undici", "needle", "superagent", "http", "https"})

# Separators of a dotted call name, and the string concatenation operators, per language.
SEPARATORS = {"node": (".", "?."), "perl": ("->", "::"), "ruby": (".", "::", "&."),
              "php": ("->", "::"), "lua": (".", ":"), "r": ("::", "$", "@"),
              "python": (".",), "awk": (), "applescript": ()}
CONCAT = {"node": ("+",), "perl": (".",), "ruby": ("+", "<<"), "php": (".",), "lua": ("..",),
          "r": (), "python": ("+",), "awk": (), "applescript": ("&",)}
# Languages whose calls may omit parentheses (`system "ls"`, `os.execute"ls"`).
PARENLESS = frozenset({"perl", "ruby", "lua", "php"})

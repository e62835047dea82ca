#!/usr/bin/env python3
"""Writes a wrk Lua script that POSTs one photo as multipart/form-data.

Usage: wrk-upload.py PHOTO OUT.lua  (the body goes to OUT.lua.body)
Shared by scripts/bench-serve.sh and scripts/bench-s3.sh.
"""
import sys

photo, out = sys.argv[1], sys.argv[2]
data = open(photo, 'rb').read()
boundary = 'kittehbench'
body = (b'--' + boundary.encode()
        + b'\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        + data + b'\r\n--' + boundary.encode() + b'--\r\n')
open(out + '.body', 'wb').write(body)
open(out, 'w').write(f'''
local f = io.open("{out}.body", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"
''')

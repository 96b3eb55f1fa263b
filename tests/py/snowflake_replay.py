"""A stand-in for the Snowflake SQL API v2 that replays the responses Snowflake documents
(docs.snowflake.com: "Submitting a request to execute SQL statements", "Checking the status of
the statement execution", "Handling errors") after checking the key-pair JWT as Snowflake does:
RS256 signed by the user's registered public key, iss = ACCOUNT.USER.SHA256:<base64 SHA-256 of
the public key's SubjectPublicKeyInfo DER>, sub = ACCOUNT.USER, a lifetime of at most one hour.
It is a mock (no Snowflake account can run here); the test that uses it says so in its name.

Usage: snowflake_replay.py keygen <dir>                       writes dir/key.pem (PKCS#8) and dir/pub.pem
       snowflake_replay.py serve <pub.pem> <ACCOUNT> <USER>   prints the port, then one JSON line per request
"""
import base64
import hashlib
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HANDLE = "01b8a3c2-0000-4a4b-0000-00012c5a1f2e"


def keygen(out):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(f"{out}/key.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(f"{out}/pub.pem", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_jwt(token, public_key, account, user):
    """Returns None when the token is what Snowflake accepts, else why not."""
    try:
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(b64url(header_b64))
        claims = json.loads(b64url(claims_b64))
        if header.get("alg") != "RS256":
            return "alg is not RS256"
        public_key.verify(b64url(sig_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception as e:  # a bad signature or a malformed token
        return f"bad token: {type(e).__name__}"
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    if claims.get("iss") != f"{account}.{user}.{fingerprint}":
        return f"iss {claims.get('iss')} is not {account}.{user}.{fingerprint}"
    if claims.get("sub") != f"{account}.{user}":
        return "sub mismatch"
    now = time.time()
    if not (claims["iat"] - 60 <= now <= claims["exp"]) or claims["exp"] - claims["iat"] > 3600:
        return "token expired or lives longer than one hour"
    return None


def serve(pub_path, account, user):
    public_key = serialization.load_pem_public_key(open(pub_path, "rb").read())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self, body):
            record = {"method": self.command, "path": self.path,
                      "token_type": self.headers.get("X-Snowflake-Authorization-Token-Type"),
                      "body": body}
            auth = self.headers.get("Authorization", "")
            why = None
            if record["token_type"] != "KEYPAIR_JWT" or not auth.startswith("Bearer "):
                why = "missing KEYPAIR_JWT bearer token"
            else:
                why = check_jwt(auth[len("Bearer "):], public_key, account, user)
            record["jwt_error"] = why
            print(json.dumps(record), flush=True)
            if why:
                self.reply(401, {"code": "390144", "message": "JWT token is invalid. [" + str(uuid.uuid4()) + "]"})
                return False
            return True

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/api/v2/statements":
                return self.reply(404, {"code": "000404", "message": "not found"})
            if not self.authorized(body):
                return
            if body.get("warehouse") == "MISSING_WH":
                return self.reply(422, {"code": "000606", "sqlState": "57P03", "statementHandle": HANDLE,
                                        "message": "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.\n"})
            # Documented: 202 while the statement runs, with the URL to poll.
            self.reply(202, {"code": "333334", "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                             "statementHandle": HANDLE, "statementStatusUrl": f"/api/v2/statements/{HANDLE}"})

        def do_GET(self):
            if not self.path.startswith(f"/api/v2/statements/{HANDLE}"):
                return self.reply(404, {"code": "000404", "message": "not found"})
            if not self.authorized(None):
                return
            self.reply(200, {
                "resultSetMetaData": {
                    "numRows": 1, "format": "jsonv2",
                    "partitionInfo": [{"rowCount": 1, "uncompressedSize": 16}],
                    "rowType": [
                        {"name": "ONE", "database": "", "schema": "", "table": "", "nullable": False, "type": "fixed",
                         "byteLength": None, "scale": 0, "precision": 1, "length": None, "collation": None},
                        {"name": "VERSION", "database": "", "schema": "", "table": "", "nullable": False, "type": "text",
                         "byteLength": 16777216, "scale": None, "precision": None, "length": 16777216, "collation": None},
                    ],
                },
                "data": [["1", "9.38.2"]],
                "code": "090001", "statementStatusUrl": f"/api/v2/statements/{HANDLE}?requestId={uuid.uuid4()}",
                "requestId": str(uuid.uuid4()), "sqlState": "00000", "statementHandle": HANDLE,
                "message": "Statement executed successfully.", "createdOn": int(time.time() * 1000),
            })

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    else:
        serve(sys.argv[2], sys.argv[3], sys.argv[4])

"""A stand-in for the Snowflake SQL API v2 that replays the responses Snowflake documents
(docs.snowflake.com: "Submitting a request to execute SQL statements", "Checking the status of
the statement execution", "Handling errors") after checking the key-pair JWT as Snowflake does:
RS256 signed by the user's registered public key, iss = ACCOUNT.USER.SHA256:<base64 SHA-256 of
the public key's SubjectPublicKeyInfo DER>, sub = ACCOUNT.USER, a lifetime of at most one hour.
It is a mock (no Snowflake account can run here); the test that uses it says so in its name.

A SELECT from SALES.PUBLIC.ORDERS answers 200 with a jsonv2 result set of ORDERS_ROWS generated
rows (every Snowflake type import maps) in three partitions: the first inline, the others on
GET ?partition=n, gzip-compressed as Snowflake sends them. A POST with a requestId seen before
and retry=true returns that statement again without running it ("executed": false in the log).
--fail-partition-once N answers 503 the first time partition N is asked for. A SELECT from
SALES.PUBLIC.EMBEDDINGS returns a VECTOR column.

Usage: snowflake_replay.py keygen <dir>                       writes dir/key.pem (PKCS#8) and dir/pub.pem
       snowflake_replay.py serve <pub.pem> <ACCOUNT> <USER> [--fail-partition-once N]
                                                              prints the port, then one JSON line per request
"""
import gzip
from urllib.parse import parse_qs, urlsplit
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
ORDERS_HANDLE = "01b8a3c2-0000-4a4b-0000-00012c5a9999"
ORDERS_ROWS = 2500
PARTITIONS = [(0, 1000), (1000, 2000), (2000, 2500)]
STORES = ["Café Centro", 'Quote "Q" Store', "Norte"]


def order_row(i):
    """Row i (1-based) exactly as the SQL API's jsonv2 sends it: every value a string or null."""
    return [
        str(i),
        None if i % 7 == 0 else f"{i * 1.25:.2f}",
        repr(i / 8),
        STORES[i % 3],
        "true" if i % 2 else "false",
        str(20000 + i % 30),
        f"{1700000000 + i}.123456789",
        f"{1700000000 + i}.500000000 1500",
        f"r{i}".encode().hex(),
        json.dumps({"i": i}),
    ]


def column(name, kind, nullable=True, precision=None, scale=None, length=None):
    return {"name": name, "database": "SALES", "schema": "PUBLIC", "table": "ORDERS", "nullable": nullable,
            "type": kind, "byteLength": length, "scale": scale, "precision": precision, "length": length, "collation": None}


ORDERS_TYPE = [
    column("ORDER_ID", "fixed", False, 38, 0), column("AMOUNT", "fixed", True, 12, 2), column("PRICE", "real"),
    column("STORE", "text", length=16777216), column("PAID", "boolean"), column("SOLD_ON", "date"),
    column("SOLD_AT", "timestamp_ntz", scale=9), column("UPDATED_AT", "timestamp_tz", scale=9),
    column("RECEIPT", "binary", length=8388608), column("ATTRS", "variant"),
]


def partition_rows(n):
    start, end = PARTITIONS[n]
    return [order_row(i) for i in range(start + 1, end + 1)]


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


def serve(pub_path, account, user, fail_partition=None):
    public_key = serialization.load_pem_public_key(open(pub_path, "rb").read())
    request_ids = set()
    failed = set()

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

        def authorized(self, body, **extra):
            record = {"method": self.command, "path": self.path, **extra,
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
            url = urlsplit(self.path)
            if url.path != "/api/v2/statements":
                return self.reply(404, {"code": "000404", "message": "not found"})
            q = parse_qs(url.query)
            request_id = q.get("requestId", [None])[0]
            resubmitted = request_id is not None and q.get("retry") == ["true"] and request_id in request_ids
            if request_id:
                request_ids.add(request_id)
            if not self.authorized(body, executed=not resubmitted, request_id=request_id):
                return
            statement = body.get("statement", "")
            if "SALES.PUBLIC.ORDERS" in statement:
                return self.reply(200, {
                    "resultSetMetaData": {"numRows": ORDERS_ROWS, "format": "jsonv2", "rowType": ORDERS_TYPE,
                                          "partitionInfo": [{"rowCount": e - b, "uncompressedSize": 100 * (e - b)} for b, e in PARTITIONS]},
                    "data": partition_rows(0), "code": "090001", "sqlState": "00000",
                    "statementHandle": ORDERS_HANDLE, "message": "Statement executed successfully.",
                    "statementStatusUrl": f"/api/v2/statements/{ORDERS_HANDLE}", "createdOn": int(time.time() * 1000)})
            if "SALES.PUBLIC.EMBEDDINGS" in statement:
                return self.reply(200, {
                    "resultSetMetaData": {"numRows": 0, "format": "jsonv2", "partitionInfo": [{"rowCount": 0}],
                                          "rowType": [column("ID", "fixed", False, 38, 0), column("EMBEDDING", "vector")]},
                    "data": [], "code": "090001", "statementHandle": ORDERS_HANDLE, "message": "Statement executed successfully."})
            if body.get("warehouse") == "MISSING_WH":
                return self.reply(422, {"code": "000606", "sqlState": "57P03", "statementHandle": HANDLE,
                                        "message": "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.\n"})
            # Documented: 202 while the statement runs, with the URL to poll.
            self.reply(202, {"code": "333334", "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                             "statementHandle": HANDLE, "statementStatusUrl": f"/api/v2/statements/{HANDLE}"})

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == f"/api/v2/statements/{ORDERS_HANDLE}":
                if not self.authorized(None):
                    return
                n = int(parse_qs(url.query).get("partition", ["0"])[0])
                if n == fail_partition and n not in failed:
                    failed.add(n)
                    return self.reply(503, {"code": "000503", "message": "Service temporarily unavailable."})
                data = gzip.compress(json.dumps({"data": partition_rows(n)}).encode())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
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
        fail = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--fail-partition-once" else None
        serve(sys.argv[2], sys.argv[3], sys.argv[4], fail)

"""A stand-in Kubernetes API server for medallion-deploy's kubernetes target (no cluster can run
here; the test that uses it says so in its name). It answers the way the API server documents
and records: server-side apply (PATCH with application/apply-patch+yaml, fieldManager, force)
stores the object and bumps metadata.generation; GET returns it (404 Status when absent); a
Deployment reports a rollout that completes after a few polls (or never); DELETE removes; the
service proxy (/api/v1/namespaces/NS/services/NAME:PORT/proxy/...) forwards to the URL of the slot
the Service's selector names, like kube-proxy would, or answers 503 when no pod serves it.

Server-side apply with dryRun=All answers what would be stored and stores nothing. Like the real
server, apply fills in defaults (a Service's type, clusterIP and sessionAffinity, a Deployment's
strategy, revisionHistoryLimit and the containers' imagePullPolicy) and keeps uid and
creationTimestamp; with --allowed-registry an admission webhook refuses Deployments whose images
come from elsewhere (403), for dry runs as for real applies.

With --terminating N the old pods of a rollout stay N more polls after the new ones are ready
(status.replicas above updatedReplicas), as during a real rolling update.

For `medallion doctor`: --preload FILE stores the objects of a multi-document YAML (an install
bundle, Argo's CRDs and controller Deployments) at their REST paths; GET of a collection path
lists the objects under it; GET /version answers a version; a SubjectAccessReview (POST
/apis/authorization.k8s.io/v1/subjectaccessreviews) is answered by evaluating the stored Roles,
ClusterRoles and their bindings as Kubernetes' RBAC authorizer documents it (a binding's
subjects name the service account or one of its groups; a rule allows when its verbs,
apiGroups and resources, "resource/subresource" for a subresource, contain the request's or
"*").

Usage: kube_replay.py --token T [--rollout N|never] [--terminating N] [--slot blue=http://...]
                      [--slot green=...] [--state FILE] [--allowed-registry PREFIX] [--preload FILE]
Prints the port, then one JSON line per request (method, path, query, content type, auth ok).
"""
import argparse
import json
import re
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token", required=True)
    ap.add_argument("--rollout", default="2")
    ap.add_argument("--terminating", type=int, default=0)
    ap.add_argument("--preload", help="a multi-document YAML whose objects the cluster holds")
    ap.add_argument("--slot", action="append", default=[])
    ap.add_argument("--state", help="a file keeping the stored objects between runs (the cluster's state)")
    ap.add_argument("--allowed-registry", help="an admission webhook refuses Deployments with images from elsewhere")
    a = ap.parse_args()
    slots = dict(s.split("=", 1) for s in a.slot)
    objects = {}
    if a.state:
        try:
            objects.update(json.load(open(a.state)))
        except FileNotFoundError:
            pass

    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                      "ClusterWorkflowTemplate"}
    plurals = {"EventBus": "eventbus"}

    def rest_path(obj):
        api = obj["apiVersion"]
        prefix = f"/apis/{api}" if "/" in api else f"/api/{api}"
        kind = obj["kind"]
        plural = plurals.get(kind) or (kind.lower() + ("es" if kind.endswith("s") else "s"))
        meta = obj.get("metadata", {})
        if kind in cluster_scoped:
            return f"{prefix}/{plural}/{meta['name']}"
        return f"{prefix}/namespaces/{meta.get('namespace', 'default')}/{plural}/{meta['name']}"

    if a.preload:
        import yaml
        for doc in yaml.safe_load_all(open(a.preload)):
            if doc:
                objects[rest_path(doc)] = doc

    def allowed(spec):
        user = spec.get("user", "")
        groups = set(spec.get("groups", []))
        attrs = spec.get("resourceAttributes", {})
        ns, verb, group = attrs.get("namespace", ""), attrs.get("verb"), attrs.get("group", "")
        resource = attrs.get("resource")
        if attrs.get("subresource"):
            resource = f"{resource}/{attrs['subresource']}"

        def names_me(subject):
            if subject.get("kind") == "ServiceAccount":
                return user == f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
            if subject.get("kind") == "User":
                return user == subject.get("name")
            return subject.get("kind") == "Group" and subject.get("name") in groups

        def rules_of(ref, binding_ns):
            if ref.get("kind") == "Role":
                role = objects.get(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{binding_ns}/roles/{ref['name']}")
            else:
                role = objects.get(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{ref['name']}")
            return (role or {}).get("rules", [])

        def matches(rule):
            return ((verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
                    and (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
                    and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
                    and not rule.get("resourceNames"))

        for path, obj in objects.items():
            kind = obj.get("kind")
            if kind == "RoleBinding" and obj.get("metadata", {}).get("namespace") != ns:
                continue
            if kind not in ("RoleBinding", "ClusterRoleBinding"):
                continue
            if not any(names_me(s) for s in obj.get("subjects", [])):
                continue
            if any(matches(r) for r in rules_of(obj.get("roleRef", {}), obj["metadata"].get("namespace"))):
                return True
        return False

    def save():
        if a.state:
            json.dump(objects, open(a.state, "w"))
    polls = {}

    def status(code, reason, message):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def begin(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            auth = self.headers.get("Authorization") == f"Bearer {a.token}"
            print(json.dumps({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                              "content_type": self.headers.get("Content-Type"), "auth": auth,
                              "body": json.loads(body) if body and self.command == "PATCH" else None}), flush=True)
            if not auth:
                self.reply(401, status(401, "Unauthorized", "Unauthorized"))
                return None
            return url, body

        def do_PATCH(self):
            got = self.begin()
            if got is None:
                return
            url, body = got
            q = parse_qs(url.query)
            if self.headers.get("Content-Type") != "application/apply-patch+yaml" or q.get("fieldManager") != ["medallion"]:
                return self.reply(415, status(415, "UnsupportedMediaType", "apply needs application/apply-patch+yaml and a fieldManager"))
            obj = json.loads(body)
            dry_run = q.get("dryRun") == ["All"]
            if a.allowed_registry and obj.get("kind") == "Deployment":
                for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                    if not c.get("image", "").startswith(a.allowed_registry):
                        return self.reply(403, status(403, "Forbidden",
                            f'admission webhook "registries.policy.example" denied the request: image {c.get("image")} is not from {a.allowed_registry}'))
            old = objects.get(url.path)
            gen = (old or {}).get("metadata", {}).get("generation", 0) + 1
            meta = obj.setdefault("metadata", {})
            meta["generation"] = gen
            meta["resourceVersion"] = str(gen * 10)
            meta["uid"] = (old or {}).get("metadata", {}).get("uid", f"uid-{abs(hash(url.path)) % 100000}")
            meta["creationTimestamp"] = (old or {}).get("metadata", {}).get("creationTimestamp", "2026-11-23T00:00:00Z")
            meta["managedFields"] = [{"manager": "medallion", "operation": "Apply"}]
            spec = obj.setdefault("spec", {})
            if obj.get("kind") == "Service":
                spec.setdefault("type", "ClusterIP")
                spec.setdefault("sessionAffinity", "None")
                spec["clusterIP"] = (old or {}).get("spec", {}).get("clusterIP", f"10.96.{len(objects)}.{gen}")
            if obj.get("kind") == "Deployment":
                spec.setdefault("revisionHistoryLimit", 10)
                spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
                for c in spec.get("template", {}).get("spec", {}).get("containers", []):
                    c.setdefault("imagePullPolicy", "IfNotPresent")
                    c.setdefault("terminationMessagePath", "/dev/termination-log")
                obj["status"] = {"observedGeneration": gen - 1, "replicas": 0, "updatedReplicas": 0, "availableReplicas": 0}
            if dry_run:
                return self.reply(200 if old else 201, obj)
            if obj.get("kind") == "Deployment":
                polls[url.path] = 0
            objects[url.path] = obj
            save()
            self.reply(201 if old is None else 200, obj)

        def do_GET(self):
            got = self.begin()
            if got is None:
                return
            url, _ = got
            if url.path == "/version":
                return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.2"})
            obj = objects.get(url.path)
            if obj is None:
                under = [o for p, o in sorted(objects.items())
                         if p.startswith(url.path + "/") and "/" not in p[len(url.path) + 1:]]
                if under:
                    return self.reply(200, {"kind": "List", "apiVersion": "v1", "items": under})
                kind = url.path.rstrip("/").split("/")[-2]
                return self.reply(404, status(404, "NotFound", f'{kind} "{url.path.split("/")[-1]}" not found'))
            if obj.get("kind") == "Deployment" and "generation" in obj.get("metadata", {}):
                polls[url.path] = polls.get(url.path, 0) + 1
                ready = a.rollout != "never" and polls[url.path] > int(a.rollout)
                old_pods = 1 if ready and polls[url.path] <= int(a.rollout) + a.terminating else 0
                want = obj.get("spec", {}).get("replicas", 1)
                obj["status"] = {"observedGeneration": obj["metadata"]["generation"] if ready else obj["metadata"]["generation"] - 1,
                                 "replicas": want + old_pods, "updatedReplicas": want if ready else 0,
                                 "availableReplicas": want if ready else 0}
            self.reply(200, obj)

        def do_DELETE(self):
            got = self.begin()
            if got is None:
                return
            url, _ = got
            objects.pop(url.path, None)
            save()
            self.reply(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

        def do_POST(self):
            got = self.begin()
            if got is None:
                return
            url, body = got
            if url.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
                review = json.loads(body)
                review["status"] = {"allowed": allowed(review.get("spec", {}))}
                return self.reply(201, review)
            m = re.match(r"^/api/v1/namespaces/([^/]+)/services/([^/:]+):([^/]+)/proxy(/.*)$", url.path)
            if not m:
                return self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
            ns, name, _, rest = m.groups()
            svc = objects.get(f"/api/v1/namespaces/{ns}/services/{name}")
            if svc is None:
                return self.reply(404, status(404, "NotFound", f'services "{name}" not found'))
            slot = svc.get("spec", {}).get("selector", {}).get("medallion.dev/slot")
            target = slots.get(slot)
            if target is None:
                return self.reply(503, status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"'))
            req = urllib.request.Request(target + rest, data=body, method="POST",
                                         headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    data = r.read()
                    code = r.status
            except urllib.error.HTTPError as e:
                data, code = e.read(), e.code
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

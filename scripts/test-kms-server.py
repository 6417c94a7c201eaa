"""The KMS servers of KMSClientTests, on a free port of 127.0.0.1; the first line printed is a JSON object saying where.

  test-kms-server.py moto    a real local KMS (moto in server mode) that checks SigV4 signatures and, as AWS does, refuses
                             to use a disabled key or one pending deletion (moto alone uses them): its first three
                             requests (an IAM user, its access key, its policy) go unauthenticated; every later one must be
                             signed with that user's key. Creates, signed with it (boto3): a key, an alias of it, a second
                             key, a disabled key, and temporary credentials (a role assumed, with a session token).
                             Prints the port, the credentials and the keys.
  test-kms-server.py double  a hostile KMS double (standard library only): its answer depends on the request's KeyId
                             (see BEHAVIOURS). Prints the port.

Both run until killed, or until the process that started them ends.
"""
import base64
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def refuse_unusable_keys():
    """AWS refuses Encrypt, Decrypt and GenerateDataKey with a key that is disabled (400 DisabledException) or pending
    deletion (400 KMSInvalidStateException); moto 5 reports the state but uses the key anyway. Make it refuse as AWS
    does, so a customer disabling (or scheduling the deletion of) their key is seen as it would be."""
    from moto.core.exceptions import JsonRESTError
    from moto.kms.models import KmsBackend

    def check(backend, key_id):
        key = backend.keys.get(backend.any_id_to_key_id(key_id))
        if key is None:
            return
        if key.key_state == "Disabled":
            raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")
        if key.key_state == "PendingDeletion":
            raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")

    encrypt, decrypt, generate_data_key = KmsBackend.encrypt, KmsBackend.decrypt, KmsBackend.generate_data_key

    def checked_encrypt(self, key_id, *args, **kwargs):
        check(self, key_id)
        return encrypt(self, key_id, *args, **kwargs)

    def checked_decrypt(self, *args, **kwargs):
        plaintext, arn = decrypt(self, *args, **kwargs)
        check(self, arn)
        return plaintext, arn

    def checked_generate_data_key(self, key_id, *args, **kwargs):
        check(self, key_id)
        return generate_data_key(self, key_id, *args, **kwargs)

    KmsBackend.encrypt, KmsBackend.decrypt, KmsBackend.generate_data_key = checked_encrypt, checked_decrypt, checked_generate_data_key


def moto():
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import boto3
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    refuse_unusable_keys()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://127.0.0.1:{port}"
    anonymous = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIDSETUP", aws_secret_access_key="setup")
    iam = boto3.client("iam", **anonymous)
    iam.create_user(UserName="keywarden")
    key = iam.create_access_key(UserName="keywarden")["AccessKey"]
    iam.put_user_policy(UserName="keywarden", PolicyName="kms", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:*", "iam:*", "sts:AssumeRole"], "Resource": "*"}]}))
    signed = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
    kms = boto3.client("kms", **signed)
    # Temporary credentials (a session token that moto checks): a role the user assumes, allowed kms:*.
    iam = boto3.client("iam", **signed)
    role = iam.create_role(RoleName="keywarden-kms", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))["Role"]
    iam.put_role_policy(RoleName="keywarden-kms", PolicyName="kms", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}))
    session = boto3.client("sts", **signed).assume_role(RoleArn=role["Arn"], RoleSessionName="keywarden-test")["Credentials"]
    main = kms.create_key(Description="keywarden test")["KeyMetadata"]
    kms.create_alias(AliasName="alias/keywarden-test", TargetKeyId=main["KeyId"])
    other = kms.create_key(Description="keywarden test, another key")["KeyMetadata"]
    disabled = kms.create_key(Description="keywarden test, disabled")["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    print(json.dumps({"port": port, "accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"],
                      "keyId": main["KeyId"], "keyArn": main["Arn"], "alias": "alias/keywarden-test",
                      "otherKeyId": other["KeyId"], "disabledKeyId": disabled["KeyId"],
                      "sessionAccessKeyId": session["AccessKeyId"], "sessionSecretAccessKey": session["SecretAccessKey"],
                      "sessionToken": session["SessionToken"]}), flush=True)
    threading.Event().wait()


def b64(data):
    return base64.b64encode(data).decode()


# KeyId → (status, headers, body); a callable body is called with the request's body and headers.
BEHAVIOURS = {
    "non-json": (200, {"Content-Type": "text/html"}, b"<html><body>Service Unavailable (a proxy's page)</body></html>"),
    "short-plaintext": (200, {}, json.dumps({"Plaintext": b64(bytes(range(31))), "CiphertextBlob": b64(b"\x01" * 64),
                                            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/short"}).encode()),
    "missing-field": (200, {}, b"{}"),
    "bad-base64": (200, {}, json.dumps({"Plaintext": "!!! not base64 !!!", "CiphertextBlob": "@@@@", "KeyId": "k"}).encode()),
    "internal": (500, {}, json.dumps({"__type": "KMSInternalException", "message": "internal failure"}).encode()),
    "unavailable-html": (503, {"Content-Type": "text/html"}, b"<html>503 Service Unavailable</html>"),
    "disabled": (400, {}, json.dumps({"__type": "com.amazonaws.kms#DisabledException",
                                      "message": "arn:aws:kms:us-east-1:111122223333:key/disabled is disabled."}).encode()),
    "invalid-state": (400, {}, json.dumps({"__type": "com.amazonaws.kms#KMSInvalidStateException",
                                           "message": "key is pending deletion"}).encode()),
    "throttled": (400, {}, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()),
    "too-many": (429, {}, b""),
    "denied-long": (400, {}, json.dumps({"__type": "AccessDeniedException", "message": "denied " + "x" * 5000}).encode()),
    "bad-signature": (400, {}, json.dumps({"__type": "InvalidSignatureException", "message": "signature mismatch"}).encode()),
    "not-found": (400, {}, json.dumps({"__type": "com.amazonaws.kms#NotFoundException", "message": "no such key"}).encode()),
    "incorrect-key": (400, {}, json.dumps({"__type": "IncorrectKeyException", "message": "wrong key"}).encode()),
    "validation": (400, {}, json.dumps({"__type": "ValidationException", "message": "1 validation error"}).encode()),
    # Echo the request (its body and headers; the plaintext it carries, decoded) in an error's message: what the client
    # sent must not reach its error.
    "echo": (400, {}, lambda body, headers: json.dumps({"__type": "ValidationException",
                                                        "message": body.decode(errors="replace") + " " + str(headers)}).encode()),
    "echo-decoded": (400, {}, lambda body, headers: json.dumps({"__type": "AccessDeniedException", "message": "you sent " + base64.b64decode(
        json.loads(body).get("Plaintext", "")).decode(errors="replace")}).encode()),
}


class Double(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            key = json.loads(body).get("KeyId", "")
        except ValueError:
            key = ""
        try:
            if key == "slow":
                time.sleep(10)
                self.answer(200, {}, b"{}")
            elif key == "slow-body":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b'{"Plaintext": ')
                self.wfile.flush()
                time.sleep(10)
            elif key == "huge":
                self.answer(200, {}, b'{"Plaintext": "' + b"A" * (3 * 1024 * 1024) + b'"}')
            elif key == "huge-unsized":
                # No Content-Length: the body ends when the connection closes; 3 MB in 64 KiB writes.
                self.protocol_version = "HTTP/1.0"
                self.close_connection = True
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b'{"Plaintext": "')
                for _ in range(48):
                    self.wfile.write(b"A" * 65536)
            elif key == "reset":
                self.close_connection = True
                self.connection.shutdown(2)
            else:
                status, headers, answer = BEHAVIOURS.get(key, BEHAVIOURS["not-found"])
                if callable(answer):
                    answer = answer(body, dict(self.headers))
                self.answer(status, headers, answer)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def answer(self, status, headers, body):
        self.send_response(status)
        headers = {"Content-Type": "application/x-amz-json-1.1", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def double():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Double)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


def exit_with_parent():
    """Ends this server when the test process that started it is gone (a crash skips the test's own clean-up)."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    exit_with_parent()
    {"moto": moto, "double": double}[sys.argv[1]]()

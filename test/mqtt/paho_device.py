#!/usr/bin/python3
"""A minimal otpgate phone written against Eclipse Paho (paho-mqtt 1.6), the
client library the Android app uses: MQTT 3.1.1 over TLS with the gateway's CA,
client id = username = device id, password = token, cleanSession=false, a
retained will on sms/device/<id>. For every job on sms/out/<id> it acks
`received` then `sent` on sms/ack/<id> (QoS 1) and never handles an id twice.

It prints one JSON object per line on stdout, for the test to read:
  {"event": "connected", "rc": 0, "sessionPresent": false}
  {"event": "subscribed", "granted": [1]}
  {"event": "job", "id": ..., "to": ..., "body": ..., "expiresAt": ...}
  {"event": "duplicate", "id": ...}          a redelivered job, not sent again
  {"event": "cancel", "id": ...}
  {"event": "acked", "id": ..., "status": "received" | "sent"}
  {"event": "done", "jobs": N}                N jobs handled
  {"event": "timeout", "jobs": N}             gave up waiting
  {"event": "error", "message": ...}
Exit status: 0 after N jobs, 2 on timeout, 1 on a refused connection or bad input.

Usage: paho_device.py --host 127.0.0.1 --port 8883 --ca ca.pem --id dev_x --token og_dev_y [--jobs 1] [--timeout 20]
"""
import argparse
import json
import sys
import threading
from datetime import datetime, timezone

import paho.mqtt.client as mqtt


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()

    device_id = args.id
    out_topic = "sms/out/" + device_id
    ack_topic = "sms/ack/" + device_id
    status_topic = "sms/device/" + device_id
    handled = set()
    pending_acks = []
    finished = threading.Event()
    outcome = {"code": 2}
    lock = threading.Lock()

    client = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=args.ca)
    client.username_pw_set(device_id, args.token)
    client.will_set(status_topic, json.dumps({"online": False}), qos=1, retain=True)

    def on_connect(cl, _userdata, flags, rc):
        emit("connected", rc=rc, sessionPresent=bool(flags.get("session present", 0)))
        if rc != 0:
            outcome["code"] = 1
            finished.set()
            return
        cl.subscribe(out_topic, qos=1)
        cl.publish(status_topic, json.dumps({"online": True, "app": "paho-test/1.6", "at": now_iso()}), qos=1, retain=True)

    def on_subscribe(_cl, _userdata, _mid, granted_qos):
        emit("subscribed", granted=list(granted_qos))
        if any(q == 0x80 for q in granted_qos):
            outcome["code"] = 1
            finished.set()

    def ack(cl, job_id, status):
        info = cl.publish(ack_topic, json.dumps({"id": job_id, "status": status, "at": now_iso()}), qos=1)
        pending_acks.append(info)
        emit("acked", id=job_id, status=status, mid=info.mid)

    def on_message(cl, _userdata, msg):
        try:
            payload = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            emit("error", message="unreadable payload: %s" % error)
            return
        job_id = payload.get("id") if isinstance(payload, dict) else None
        if not isinstance(job_id, str):
            emit("error", message="payload without an id")
            return
        if payload.get("cancel") is True:
            emit("cancel", id=job_id)
            return
        with lock:
            if job_id in handled:
                emit("duplicate", id=job_id)
                return
            handled.add(job_id)
            count = len(handled)
        emit("job", id=job_id, to=payload.get("to"), body=payload.get("body"), expiresAt=payload.get("expiresAt"))
        ack(cl, job_id, "received")
        ack(cl, job_id, "sent")
        if count >= args.jobs:
            outcome["code"] = 0
            finished.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message

    try:
        client.connect(args.host, args.port, keepalive=30)
    except Exception as error:  # TLS or socket failure: report it as a line like everything else
        emit("error", message=str(error))
        return 1
    client.loop_start()
    finished.wait(args.timeout)
    if outcome["code"] == 0:
        # Leave only once the broker has PUBACKed every ack (QoS 1), so none is lost with the connection.
        for info in list(pending_acks):
            info.wait_for_publish(timeout=5)
        emit("done", jobs=len(handled), acksConfirmed=all(info.is_published() for info in pending_acks))
        info = client.publish(status_topic, json.dumps({"online": False, "at": now_iso()}), qos=1, retain=True)
        info.wait_for_publish(timeout=5)
    elif outcome["code"] == 2:
        emit("timeout", jobs=len(handled))
    client.disconnect()
    client.loop_stop()
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())

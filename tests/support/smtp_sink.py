"""A real SMTP server on loopback (aiosmtpd) that prints every message it accepts.

Usage: smtp_sink.py PORT
Prints "READY" once listening, then one JSON line per message:
{"mail_from", "rcpt_tos": [...], "subject", "body": <decoded text>, "data": <raw message>}.
"""
import email
import email.policy
import json
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(message["subject"]),
            "body": message.get_content(),
            "data": envelope.content.decode("utf-8", "replace"),
        }), flush=True)
        return "250 Message accepted for delivery"


def main():
    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("READY", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

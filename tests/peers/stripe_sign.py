#!/usr/bin/env python3
"""Print a Stripe-Signature header made by Stripe's own Python library.

Grito's tests sign their Stripe fixtures with this script, so the header
format and the HMAC come from code that is not Grito's: the `stripe`
package from PyPI (``WebhookSignature.generate_signature_header``, present
since stripe 8; tested with 16.1.0).

Usage: stripe_sign.py --secret SECRET --timestamp UNIX_SECONDS FILE
The body is read from FILE byte for byte; the header goes to stdout.
"""

import argparse
import sys

from stripe import WebhookSignature


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True, help="the endpoint secret (whsec_...)")
    parser.add_argument("--timestamp", required=True, type=int, help="the signed time, in Unix seconds")
    parser.add_argument("file", help="the request body")
    args = parser.parse_args()

    with open(args.file, "rb") as body:
        payload = body.read().decode("utf-8")
    header = WebhookSignature.generate_signature_header(payload, args.secret, timestamp=args.timestamp)

    # Verify with the library too, so a header the library itself would
    # reject never reaches a test.
    WebhookSignature.verify_header(payload, header, args.secret, tolerance=None)
    sys.stdout.write(header)


if __name__ == "__main__":
    main()

"""Calling the meter with Python's own xmlrpc.client.

Run the server with ``uvicorn docs_src.xmlrpc.service:app``, then this module.
"""

import xmlrpc.client
from typing import Any


def main(url: str) -> list[Any]:
    with xmlrpc.client.ServerProxy(f"{url}/RPC2", use_builtin_types=True) as meter:
        north = meter.ReadMeter("north")  # params by position, in field order
        scaled = meter.ReadMeter({"site": "south", "scale": 3})  # one struct: by name
        try:
            meter.ReadMeter("west")
            missing = None
        except xmlrpc.client.Fault as fault:
            missing = (fault.faultCode, fault.faultString)
        names = meter.system.listMethods()
        batch = xmlrpc.client.MultiCall(meter)
        batch.ReadMeter("south")
        batch.ReadMeter({"site": "south", "scale": "x"})
        # Each answer is [result] or a fault struct, in call order.
        answers = batch().results
    return [north, scaled, missing, names, answers]


if __name__ == "__main__":
    for result in main("http://127.0.0.1:8000"):
        print(result)

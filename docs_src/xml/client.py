"""Create a station in XML, read it in XML and JSON, and get a problem in XML."""

import httpx

XML = {"content-type": "application/xml", "accept": "application/xml"}
NEW = b"""<NewStation>
  <name>North &amp; East</name>
  <tariff>0.25</tariff>
  <tags>solar</tags>
  <tags>roof</tags>
</NewStation>"""


def main(url: str) -> tuple[httpx.Response, httpx.Response, httpx.Response, httpx.Response]:
    with httpx.Client(base_url=url) as client:
        made = client.post("/stations", content=NEW, headers=XML)
        as_xml = client.get(made.headers["location"], headers={"accept": "application/xml"})
        as_json = client.get(made.headers["location"])
        missing = client.get("/stations/99", headers={"accept": "application/xml"})
    return made, as_xml, as_json, missing

"""The conformance contract (docs/conformance.md) in Python."""

import berth

router = berth.Router()
settings = {}


def prefix(msg):
    """``P`` of ``P.in.<name>``: every subject this guest sends to is under it."""
    return msg.subject.split(".")[0]


@router.init
def setup(config):
    settings["greeting"] = config.get("greeting", "")


@router.request("*.in.echo")
def echo(msg):
    return berth.reply(msg.body, msg.headers)


@router.request("*.in.json")
def add(msg):
    numbers = berth.json_body(msg)
    return berth.reply_json({"sum": numbers["a"] + numbers["b"]})


@router.request("*.in.fail")
def fail(msg):
    raise berth.Error(418, "I'm a teapot", "short and stout", data={"spout": True})


@router.request("*.in.config")
def config(msg):
    return berth.reply(settings["greeting"].encode())


@router.request("*.in.publish")
def publish(msg):
    berth.publish(f"{prefix(msg)}.out.published", msg.body, [("conformance", "published")])
    return berth.reply()


@router.request("*.in.call")
def call(msg):
    return berth.reply(berth.request(f"{prefix(msg)}.upstream", msg.body).body)


@router.request("*.in.forbidden")
def forbidden(msg):
    berth.publish(f"{prefix(msg)}.secret", b"leak")
    return berth.reply()


@router.event("*.in.event")
def event(msg):
    berth.publish(f"{prefix(msg)}.out.event", msg.body)


Handler = router.handler()

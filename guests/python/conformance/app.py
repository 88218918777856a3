"""The conformance contract (docs/conformance.md) in Python."""

import berth
import berth_kv

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


def named(value, what, msg):
    """A header or parameter's value as the reply, or 404 naming it."""
    if value is None:
        raise berth.Error.not_found(f"no {what} `{berth.text(msg)}`")
    return berth.reply(value.encode())


@router.request("*.in.header")
def header(msg):
    return named(berth.header(msg, berth.text(msg)), "header", msg)


@router.request("*.in.param")
def param(msg):
    return named(berth.param(msg, berth.text(msg)), "parameter", msg)


@router.request("*.in.kv-set")
def kv_set(msg):
    entry = berth.json_body(msg)
    berth_kv.open("state").set(entry["key"], entry["value"])
    return berth.reply()


@router.request("*.in.kv-get")
def kv_get(msg):
    value = berth_kv.open("state").get(berth.text(msg))
    if value is None:
        raise berth.Error.not_found(f"no key `{berth.text(msg)}`")
    return berth.reply(value)


@router.request("*.in.kv-delete")
def kv_delete(msg):
    berth_kv.open("state").delete(berth.text(msg))
    return berth.reply()


@router.request("*.in.kv-increment")
def kv_increment(msg):
    return berth.reply(str(berth_kv.open("state").increment(berth.text(msg))).encode())


@router.request("*.in.kv-cas")
def kv_cas(msg):
    entry = berth.json_body(msg)
    revision = berth_kv.open("state").set_if(entry["key"], entry["value"], entry.get("revision", 0))
    return berth.reply_json({"revision": revision})


@router.request("*.in.kv-revision")
def kv_revision(msg):
    found = berth_kv.open("state").get_versioned(berth.json_body(msg))
    return berth.reply_json({"revision": None if found is None else found[1]})


@router.request("*.in.kv-keys")
def kv_keys(msg):
    return berth.reply_json(berth_kv.open("state").keys())


@router.request("*.in.kv-denied")
def kv_denied(msg):
    berth_kv.open("other")
    return berth.reply()


Handler = router.handler()
BatchHandler = router.batch_handler()
Routes = router.routes()

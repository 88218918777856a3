"""`{{name}}.hello` answers {"name": "Ada"} with {"message": "Hello, Ada!"};
`{{name}}.note` passes each event on to `audit.{{name}}`."""
import berth

router = berth.Router()
settings = {"greeting": "Hello"}


@router.init
def setup(config):  # the manifest's [components.config], as a dict
    settings["greeting"] = config.get("greeting", "Hello")


@router.request("{{name}}.hello")
def hello(msg):
    body = berth.json_body(msg)  # bad JSON: 400
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise berth.Error.bad_request("`name` must not be empty")
    return berth.reply_json({"message": f"{settings['greeting']}, {name}!"})


@router.event("{{name}}.note")
def note(msg):
    berth.publish("audit.{{name}}", msg.body)  # checked against the manifest's grants


Handler = router.handler()  # the exports componentize-py looks for
BatchHandler = router.batch_handler()  # queued messages, several per call
Routes = router.routes()  # what the host checks the manifest against

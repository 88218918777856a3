"""A link of middleware in Python (docs/http.md, "Middleware"): the host
calls it before the handler of every route and subscription that lists
it, and it passes the message on (setting headers, marking the caller),
answers it itself, or refuses it::

    import berth
    import berth_middleware

    router = berth.Router()                  # its init gets the config
    users = {}

    @router.init
    def setup(config):
        users.update(config.get("users", {}))

    def auth(msg):
        user = users.get(berth.header(msg, "authorization") or "")
        if user is None:
            raise berth.Error(401, "Unauthorized", "unknown token")
        return berth_middleware.pass_on([("x-user", user)], mark=berth_middleware.SESSION)

    Handler = router.handler()
    Routes = router.routes()
    Middleware = berth_middleware.link(auth)

``berth build`` builds such an app for world ``stateful-middleware-backend``
(state and the gateway as for any component), and the manifest marks it
``middleware = true``. A link that returns ``None`` passes the message on
as it is; a ``berth.Error`` it raises stops the chain (a request gets it
as its answer); any other exception is a 500.
"""

from typing import Callable, List, Optional, Tuple

from componentize_py_types import Err
from wit_world.exports import middleware

import berth

SESSION = middleware.Guard.SESSION
ADMIN = middleware.Guard.ADMIN


def pass_on(headers: Optional[List[Tuple[str, str]]] = None,
            mark: Optional[middleware.Guard] = None) -> middleware.Verdict:
    """Go on to the next link, then the handler, with ``headers`` set (each
    replacing its name's values) and the caller marked ``SESSION`` or
    ``ADMIN`` if given."""
    return middleware.Verdict_Pass(middleware.Pass(list(headers or []), mark))


def respond(reply: berth.Reply) -> middleware.Verdict:
    """Answer here: a request gets ``reply`` and the handler is never called."""
    return middleware.Verdict_Respond(reply)


def link(decide: Callable[[berth.Message], Optional[middleware.Verdict]]) -> type:
    """The class componentize-py exports: assign it to ``Middleware``."""

    class Middleware:
        def handle(self, msg: berth.Message) -> middleware.Verdict:
            try:
                verdict = decide(msg)
            except berth.Error as e:
                raise Err(e.to_wit())
            except Exception as e:  # a bug in the link: 500
                raise Err(berth.Error.internal(f"{type(e).__name__}: {e}").to_wit())
            return pass_on() if verdict is None else verdict

    return Middleware

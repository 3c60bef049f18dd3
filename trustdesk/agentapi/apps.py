from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    """What agents' runtimes and outside tools read (docs/design.md section 12): the signed scope
    statement, the instance's public keys and the read API. It sits on top of the domain apps and
    only reads."""

    name = "trustdesk.agentapi"
    label = "agentapi"
    verbose_name = "Agent and read API"

    def ready(self) -> None:
        # The routes join the one NinjaAPI (one OpenAPI document) before any URLconf reads it.
        from trustdesk.agentapi.routes import register

        register()

"""Static checks of infra/ that the Bicep compiler and checkov do not make: every parameter and output used,
resource names within Azure's limits for any allowed base name, every setting the system reads set in Azure,
no secret in a template or parameter file, and only the agreed least-privilege roles."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

import bicep
from conftest import INFRA, REPO, binding_setting_refs, handler_setting_names, local_settings

MODULES = INFRA / "modules"


def resource_config(resource: dict) -> dict:
    cfg = resource["config"]
    return cfg["config"] if "loop_type" in cfg else cfg


# ---------------------------------------------------------------------------------------------------------------
# Parameters, variables, modules and outputs


def test_every_parameter_and_variable_is_used(templates):
    unused = []
    for path, t in templates.items():
        idents = bicep.code_identifiers(t.source)
        for name in [*t.parameters, *t.variables]:
            # The declaration itself is one occurrence.
            if idents.count(name) < 2:
                unused.append(f"{path.relative_to(INFRA)}: {name}")
    assert not unused, f"declared but never used: {unused}"


def test_module_calls_pass_every_required_parameter_and_no_unknown_one(templates):
    problems = []
    for path, t in templates.items():
        for name, spec in t.modules.items():
            module = templates[(path.parent / spec["detail"]["path"]).resolve()]
            passed = set(spec["config"].get("params") or {})
            declared = set(module.parameters)
            required = {p for p, d in module.parameters.items() if d.get("default") is None}
            problems += [f"{name}: unknown parameter {p}" for p in sorted(passed - declared)]
            problems += [f"{name}: missing required parameter {p}" for p in sorted(required - passed)]
    assert not problems, problems


def test_every_module_output_is_used_by_its_caller(templates):
    unused = []
    for path, t in templates.items():
        code = bicep.code_only(t.source)
        for name, spec in t.modules.items():
            module = templates[(path.parent / spec["detail"]["path"]).resolve()]
            for output in module.outputs:
                if not re.search(rf"\b{re.escape(name)}\.outputs\.{re.escape(output)}\b", code):
                    unused.append(f"{name}.outputs.{output}")
    assert not unused, f"module outputs nobody reads: {unused}"


def test_every_deployment_output_is_used_by_the_deploy_steps(main):
    """The outputs are for operators: each one is read by the workflow or a deploy step in README."""
    consumers = "\n".join(
        p.read_text()
        for p in [REPO / "README.md", *REPO.glob(".github/workflows/*.yml"), *REPO.glob("scripts/*.sh")]
        if p.exists()
    )
    unused = [o for o in main.outputs if not re.search(rf"\b{re.escape(o)}\b", consumers)]
    assert not unused, f"outputs no deploy step reads: {unused}"


def test_parameter_file_matches_main(main, parameters_file):
    unknown = sorted(set(parameters_file) - set(main.parameters))
    missing = sorted(p for p, d in main.parameters.items() if d.get("default") is None and p not in parameters_file)
    assert not unknown, f"parameters file sets parameters main.bicep does not declare: {unknown}"
    assert not missing, f"parameters file lacks required parameters: {missing}"


def test_parameter_file_values_respect_the_declared_constraints(main, parameters_file):
    for name, entry in parameters_file.items():
        value = entry["value"]
        allowed = main.decorator(name, "allowed")
        if allowed is not None:
            assert value in allowed, name
        for kind, check in [
            ("min_length", lambda v, b: len(v) >= b),
            ("max_length", lambda v, b: len(v) <= b),
            ("min_value", lambda v, b: v >= b),
            ("max_value", lambda v, b: v <= b),
        ]:
            bound = main.decorator(name, kind)
            if bound is not None:
                assert check(value, bound), f"{name}={value!r} breaks @{kind}({bound})"


# ---------------------------------------------------------------------------------------------------------------
# Resource names

# type -> (min, max, pattern) from Azure's naming rules for each resource provider.
NAME_RULES = {
    "Microsoft.ManagedIdentity/userAssignedIdentities": (3, 128, r"[A-Za-z0-9][A-Za-z0-9_-]*"),
    "Microsoft.OperationalInsights/workspaces": (4, 63, r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.Insights/components": (1, 260, r"[^%&\\?/]+"),
    "Microsoft.Insights/diagnosticSettings": (1, 260, r"[^*<>%:&?/\\]+"),
    "Microsoft.Storage/storageAccounts": (3, 24, r"[a-z0-9]+"),
    "Microsoft.Storage/storageAccounts/blobServices": (7, 7, r"default"),
    "Microsoft.Storage/storageAccounts/blobServices/containers": (3, 63, r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]"),
    "Microsoft.Web/serverfarms": (1, 60, r"[A-Za-z0-9-]+"),
    "Microsoft.Web/sites": (2, 60, r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": (3, 3, r"scm|ftp"),
    "Microsoft.Web/staticSites": (1, 40, r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.KeyVault/vaults": (3, 24, r"[A-Za-z](?!.*--)[A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.KeyVault/vaults/secrets": (1, 127, r"[A-Za-z0-9-]+"),
    "Microsoft.SignalRService/signalR": (3, 63, r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"),
    "Microsoft.ServiceBus/namespaces": (6, 50, r"[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9](?<!-sb)(?<!-mgmt)"),
    "Microsoft.ServiceBus/namespaces/queues": (1, 260, r"[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?"),
    "Microsoft.DocumentDB/databaseAccounts": (3, 44, r"[a-z0-9][a-z0-9-]*[a-z0-9]"),
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases": (1, 255, r"[^/\\#?]+"),
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers": (1, 255, r"[^/\\#?]+"),
}
# Names that are guid(...) by construction (checked to be guid() calls instead).
GUID_NAMED = {"Microsoft.Authorization/roleAssignments", "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"}


def base_name_candidates(main) -> list[str]:
    lo, hi = main.decorator("baseName", "min_length"), main.decorator("baseName", "max_length")
    assert lo and hi, "baseName must declare @minLength and @maxLength: the name limits depend on them"
    return ["a" * lo, "a" + "9" * (hi - 1), main.parameters["baseName"]["default"]]


def resolved_names(templates, main, base_name: str) -> list[tuple[str, str, object]]:
    """(where, type, name) for every resource, with module parameters resolved through main.bicep."""
    out = []
    main_ev = bicep.Evaluator(main, {"baseName": base_name})
    for path, t in templates.items():
        if path == main.path:
            ev = main_ev
        else:
            [(call, spec)] = [(n, s) for n, s in main.modules.items() if (INFRA / s["detail"]["path"]) == path]
            params = {k: main_ev.value(v) for k, v in (spec["config"].get("params") or {}).items()}
            ev = bicep.Evaluator(t, params)
        for name, r in t.resources.items():
            if r.get("existing"):
                continue
            node = resource_config(r)["name"]
            if r["type"] in GUID_NAMED:
                assert isinstance(node, dict) and node.get("function", {}).get("type") == "guid", (path, name)
                continue
            out.append((f"{path.relative_to(INFRA)}:{name}", r["type"], ev.value(node)))
    return out


@pytest.mark.parametrize("which", ["shortest", "longest", "default"])
def test_resource_names_are_within_azure_limits(templates, main, which):
    base = dict(zip(["shortest", "longest", "default"], base_name_candidates(main)))[which]
    problems = []
    for where, rtype, name in resolved_names(templates, main, base):
        if rtype not in NAME_RULES:
            problems.append(f"{where}: no naming rule known for {rtype}: add it to NAME_RULES")
            continue
        if not isinstance(name, str) or bicep.UNKNOWN in name:
            problems.append(f"{where}: name cannot be resolved before deployment ({name!r})")
            continue
        lo, hi, pattern = NAME_RULES[rtype]
        if not (lo <= len(name) <= hi and re.fullmatch(pattern, name)):
            problems.append(f"{where}: {name!r} ({len(name)} chars) breaks {rtype} rule {lo}-{hi} {pattern}")
    assert not problems, "\n".join(problems)


def test_function_app_name_fits_the_host_id(templates, main):
    """The Functions host id is the app name cut to 32 characters; longer names can collide on shared storage."""
    longest = base_name_candidates(main)[1]
    names = [n for _, t, n in resolved_names(templates, main, longest) if t == "Microsoft.Web/sites"]
    assert names and all(len(n) <= 32 for n in names), names


# ---------------------------------------------------------------------------------------------------------------
# App settings

# Settings the running system knows that Azure deliberately does not set, each with the reason.
NOT_SET_IN_AZURE = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption declares the runtime in functionAppConfig; the setting is refused there",
    "FUNCTIONS_CUSTOMHANDLER_PORT": "set by the Functions host when it starts the handler",
    "REGION_NAME": "set by the platform on every instance; the Cosmos client routes to that region",
    "DASHBOARD_CURRENCY": "the default (TRY) is the currency the Turkish marketplaces report order totals in",
    "AUTH_JWT_SECRET": "Azure signs users in with the OIDC issuer (AUTH_OIDC_ISSUER); a shared HS256 secret is for local development",
    "AUTH_JWKS_URL": "Azure uses AUTH_OIDC_ISSUER (the handler takes exactly one of the two key sources)",
    "AzureSignalRFallbackConnectionString": "one SignalR instance is provisioned; a fallback is a second deployment's choice",
    "MESCHAIN_DATA_DIR": "the embedded store is for local runs; Azure uses Cosmos DB (COSMOS_ENDPOINT)",
    "COSMOS_KEY": "absent on purpose: the app uses Entra ID; the account has local (key) auth disabled",
    "ANALYTICS_BUFFER": "the store's default buffer is the intended production size",
    "ANALYTICS_ENABLED": "analytics stay on (the default) in Azure",
    "MARKETPLACE_SANDBOX": "the sandbox connector is for local runs; Azure never pretends to push to a marketplace",
    "TRENDYOL_BASE_URL": "the code's default is Trendyol's production gateway",
    "TRENDYOL_INTEGRATOR": "the code's default (SelfIntegration) is what a seller integrating itself sends",
    "TRENDYOL_CONCURRENCY": "the code's default matches Trendyol's documented limits",
    "TRENDYOL_RATE_LIMIT": "the code's default is Trendyol's documented 50 requests per 10 s",
    "HEPSIBURADA_BASE_URL": "the code's default is Hepsiburada's production listing host",
    "HEPSIBURADA_ORDERS_BASE_URL": "the code's default is Hepsiburada's production order (OMS) host",
    "HEPSIBURADA_RATE_LIMIT": "the code's default is Hepsiburada's documented 100 listing requests per second",
    "HEPSIBURADA_CONCURRENCY": "the code's default is tuned with the rate limit",
    "N11_BASE_URL": "the code's default is N11's production REST host",
    "N11_INTEGRATOR": "the code's default names this integration",
    "N11_RATE_LIMIT": "N11 documents no limit; the code's default backs off from 429s",
    "N11_CONCURRENCY": "the code's default is tuned with the rate limit",
    "OZON_BASE_URL": "the code's default is Ozon's production Seller API host",
    "CATALOG_TABLE_PREFIX": "the code's default is OpenCart's (oc_); an operator with another prefix adds it",
    "CATALOG_BARCODE_COLUMN": "the code's default (ean) is where OpenCart stores barcodes",
    "CATALOG_CUSTOMER_GROUP_ID": "the code's default is the store's default customer group, read from the catalogue",
    "CATALOG_TIME_ZONE": "the code's default (+00:00) is OpenCart's when the server runs in UTC",
    "CATALOG_MYSQL_CA_FILE": "for a private CA only; Azure Database for MySQL chains to public roots",
    "CATALOG_SYNC_MARKETPLACES": "the code's default is every marketplace with a configured connector",
    "ITEMS_URL_ALLOW_LOOPBACK": "set by meschain dev only; never in Azure",
    "EBAY_BASE_URL": "the code's default is eBay's production API host",
    "EBAY_SKUS_PER_CALL": "the code's default is eBay's documented 25 inventory items per bulk call",
    "AMAZON_BASE_URL": "the code's default is the SP-API EU host, which serves Turkey and Germany",
    "AMAZON_TOKEN_URL": "the code's default is Login with Amazon's token endpoint",
    "AMAZON_CURRENCY": "the code derives it from AMAZON_MARKETPLACE_ID for the marketplaces it knows",
    "AMAZON_PRODUCT_TYPE": "the code's default (PRODUCT) is what Amazon's offer-only examples send",
    "AMAZON_FEED_MESSAGES": "the code's default (10,000 per feed) keeps a 100,000-item sync within createFeed's burst",
    "SYNC_LEASE_SECONDS": "the sync engine's default lease is tuned with its time budget",
    "SECRETS_OVERLAP_SECONDS": "the default (the larger of 900 s and twice the refresh) covers every instance's refresh",
    "SECRETS_VAULT_ADDRESS": "a test override that points at the fake vault; production uses the vault in each reference",
    "SECRETS_VAULT_CA_FILE": "a test override for the fake vault's certificate; production keeps the system trust store",
    "WEB_OIDC_CLIENT_ID": "read by meschain dev to serve config.json locally; in Azure the dashboard's config.json comes from the dashboardConfig output",
    "WEB_OIDC_SCOPE": "same as WEB_OIDC_CLIENT_ID",
    "WEB_OIDC_RESOURCE": "same as WEB_OIDC_CLIENT_ID",
}


def is_set(name: str, settings: dict) -> bool:
    """Set directly, or as an identity-based connection (`NAME__fullyQualifiedNamespace`, `NAME__accountName`...)."""
    return name in settings or any(k.startswith(name + "__") for k in settings)


def test_every_setting_a_binding_references_is_set(app_settings):
    refs = binding_setting_refs()
    assert refs, "no binding references any setting: the function.json files were not found"
    missing = {n: sorted(f) for n, f in refs.items() if not is_set(n, app_settings)}
    assert not missing, f"settings bindings read but main.bicep does not set: {missing}"


def test_every_setting_the_system_reads_is_set_or_deliberately_left_out(app_settings):
    known = set(local_settings()) | handler_setting_names()
    assert "AzureSignalRConnectionString" in known and "SYNC_QUEUE_NAME" in known
    missing = sorted(n for n in known if not is_set(n, app_settings) and n not in NOT_SET_IN_AZURE)
    assert not missing, (
        f"settings in local.settings.example.json or the handler's names that main.bicep does not set: {missing}. "
        "Set them in main.bicep, or add them to NOT_SET_IN_AZURE with the reason."
    )


def test_exemptions_do_not_contradict_the_template(app_settings):
    """A setting is either set in Azure or exempted, never both. (Exemptions may name settings other changes are
    adding at the same time, so one the code does not read yet is not an error.)"""
    both = sorted(n for n in NOT_SET_IN_AZURE if n in app_settings)
    assert not both, both


def test_sync_budget_fits_the_function_timeout(app_settings):
    host = json.loads((REPO / "host.json").read_text())
    timeout_s = hms_minutes(host["functionTimeout"]) * 60
    assert 0 < int(app_settings["SYNC_TIME_BUDGET_SECONDS"]) < timeout_s
    # The sandbox connector is for local runs only: Azure never pretends to push to a marketplace.
    assert "MARKETPLACE_SANDBOX" not in app_settings


def test_flex_consumption_settings(app_settings):
    for name in ("FUNCTIONS_WORKER_RUNTIME", "WEBSITE_RUN_FROM_PACKAGE", "FUNCTIONS_EXTENSION_VERSION"):
        assert name not in app_settings, f"{name} must not be set on Flex Consumption"
    for conn in ("AzureWebJobsStorage", "ServiceBusConnection"):
        assert conn not in app_settings, f"{conn} must be identity-based, not a connection string"
        assert app_settings[f"{conn}__credential"] == "managedidentity"
        assert f"{conn}__clientId" in app_settings
    assert "AzureWebJobsStorage__accountName" in app_settings
    assert "ServiceBusConnection__fullyQualifiedNamespace" in app_settings


SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN)$|ConnectionString$", re.IGNORECASE)
KV_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=https://[^)]+/secrets/([A-Za-z0-9-]+)/\)$")


def test_secret_settings_are_key_vault_references(app_settings):
    """A setting whose name says secret is a Key Vault reference, or a value with no secret in it (an
    identity-based connection string)."""
    problems = []
    for name, value in app_settings.items():
        if not SECRET_NAME.search(name) or name == "APPLICATIONINSIGHTS_CONNECTION_STRING":
            continue
        text = value.replace(bicep.UNKNOWN, "x") if isinstance(value, str) else ""
        if KV_REFERENCE.match(text):
            continue
        if name == "AzureSignalRConnectionString" and "AuthType=azure.msi" in text and "AccessKey" not in text:
            continue
        problems.append(f"{name}={value!r}")
    assert not problems, problems


MARKETPLACE_SECRETS = {
    "TRENDYOL_API_KEY": "trendyol-api-key",
    "TRENDYOL_API_SECRET": "trendyol-api-secret",
    "HEPSIBURADA_SERVICE_KEY": "hepsiburada-service-key",
    "N11_APP_KEY": "n11-app-key",
    "N11_APP_SECRET": "n11-app-secret",
    "OZON_API_KEY": "ozon-api-key",
    "EBAY_CLIENT_SECRET": "ebay-client-secret",
    "EBAY_REFRESH_TOKEN": "ebay-refresh-token",
}


def test_marketplace_credentials_are_key_vault_references_wired_only_when_given(main, app_settings):
    """Each marketplace's secrets are Key Vault references to the secret README tells the operator to write, in a
    settings group present only when that marketplace's id parameter is given (empty by default: the secrets
    would not exist yet, and a half-configured marketplace would fail every sync)."""
    for name, secret in MARKETPLACE_SECRETS.items():
        m = KV_REFERENCE.match(str(app_settings.get(name, "")).replace(bicep.UNKNOWN, "x"))
        assert m and m.group(1) == secret, (name, app_settings.get(name))
    for name in ("HEPSIBURADA_MERCHANT_ID", "HEPSIBURADA_INTEGRATOR", "OZON_CLIENT_ID", "OZON_WAREHOUSE_ID", "OZON_CURRENCY", "EBAY_CLIENT_ID", "EBAY_MARKETPLACE_ID", "EBAY_CURRENCY"):
        assert name in app_settings, name
    text = main.path.read_text()
    for group, param in (("trendyolSettings", "trendyolSellerId"), ("ozonSettings", "ozonClientId"), ("ebaySettings", "ebayClientId")):
        assert re.search(rf"var {group} = empty\({param}\) \? \{{\}} :", text), group
        assert main.parameters[param]["default"] == "", param
    assert re.search(r"var hepsiburadaSettings = empty\(hepsiburadaMerchantId\) \? \{\} :", text)
    assert re.search(r"var n11Settings = n11Enabled \? \{", text) and main.parameters["n11Enabled"]["default"] is False


def test_every_key_vault_secret_is_written_by_someone(templates, main, app_settings):
    """Each secret a setting refers to is written by a template, or by a step README gives (the operator, or
    scripts/upstream-key.sh)."""
    readme = (REPO / "README.md").read_text()
    default = main.parameters["baseName"]["default"]
    by_templates = {n for _, t, n in resolved_names(templates, main, default) if t == "Microsoft.KeyVault/vaults/secrets"}
    referenced = {
        m.group(1)
        for v in app_settings.values()
        if isinstance(v, str) and (m := KV_REFERENCE.match(v.replace(bicep.UNKNOWN, "x")))
    }
    assert referenced, "no setting is a Key Vault reference"
    not_written = sorted(s for s in referenced - by_templates if not re.search(rf"\b{re.escape(s)}\b", readme))
    assert not not_written, f"secrets referenced but never written (add the step to README): {not_written}"


# ---------------------------------------------------------------------------------------------------------------
# No secrets in templates or parameter files

SECRET_PATTERNS = [
    re.compile(r"(AccountKey|SharedAccessKey|AccessKey|Password|ClientSecret)\s*=\s*[^;${\s']", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # a JWT
    # A long base64 or hex key: 32+ such characters with digits and letters mixed (a resource type path
    # like Microsoft.Storage/storageAccounts/... has no digits).
    re.compile(r"(?<![A-Za-z0-9+/])(?=(?:[A-Za-z+/=]*\d){4})(?=(?:[0-9+/=]*[A-Za-z]){4})[A-Za-z0-9+/]{32,}={0,2}(?![A-Za-z0-9+/])"),
]


@pytest.mark.parametrize(
    "path", sorted([*INFRA.rglob("*.bicep"), *INFRA.glob("*.json")]), ids=lambda p: str(p.relative_to(INFRA))
)
def test_no_secret_value_in_templates_or_parameter_files(path):
    text = path.read_text()
    values = bicep.string_literals(text) if path.suffix == ".bicep" else [
        v for v in re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    ]
    hits = [v for v in values for p in SECRET_PATTERNS if p.search(v)]
    assert not hits, f"{path.name}: values that look like secrets: {hits}"


def test_secret_patterns_catch_secrets():
    """The scanner itself: it must flag what it is for (else the test above cannot fail)."""
    samples = [
        "Endpoint=https://x.service.signalr.net;AccessKey=abc123;Version=1.0;",
        "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=Zm9vYmFy",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.sig",
        "q83vEjRWeJA8Q2fRa7bHbm1vB0vTQ0PqsZk2yV4hM7U=",
    ]
    for s in samples:
        assert any(p.search(s) for p in SECRET_PATTERNS), s
    for fine in ["Endpoint=https://${signalRHost};AuthType=azure.msi;ClientId=${id};Version=1.0;", "https://login.microsoftonline.com/x/v2.0"]:
        assert not any(p.search(fine) for p in SECRET_PATTERNS), fine


def test_secure_parameters_have_no_default(templates):
    for path, t in templates.items():
        for name, p in t.parameters.items():
            if any(d.get("type") == "secure" for d in p.get("decorators") or []):
                assert p.get("default") is None, f"{path.name}: @secure() {name} has a default"


def test_keys_read_from_a_service_only_go_into_key_vault(templates):
    """listKeys()/listSecrets() results appear only as the value of a Key Vault secret, never in an output,
    a setting or another resource."""
    problems = []
    for path, t in templates.items():
        for section in ("outputs", "variables", "modules"):
            for name, node in (t.tree.get(section) or {}).items():
                if "list" in json.dumps(node) and re.search(r'"func_name": "list', json.dumps(node)):
                    problems.append(f"{path.name}: {section}.{name}")
        for name, r in t.resources.items():
            props = json.dumps(resource_config(r))
            if re.search(r'"func_name": "list', props) and r["type"] != "Microsoft.KeyVault/vaults/secrets":
                problems.append(f"{path.name}: resource {name}")
    assert not problems, problems


# ---------------------------------------------------------------------------------------------------------------
# Roles

ALLOWED_ROLES = {
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "7e4f1700-ea5a-4f59-8f37-079cfe29dce3": "SignalR Service Owner",
    "fd53cd77-2268-407a-8f46-7e7863d0f521": "SignalR REST API Owner",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    # Not in the list: with local auth off on Application Insights, telemetry is accepted only from an
    # identity holding this role on the component (scoped to that one component).
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"


def role_assignments(templates):
    for path, t in templates.items():
        for name, r in t.resources.items():
            if r["type"] in ("Microsoft.Authorization/roleAssignments", "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"):
                yield path, t, name, r


def test_every_role_assignment_is_a_listed_role_on_one_resource(templates):
    found = []
    for path, t, name, r in role_assignments(templates):
        cfg = resource_config(r)
        where = f"{path.name}:{name}"
        role_node = cfg["properties"]["roleDefinitionId"]
        ev = bicep.Evaluator(t)
        if r["type"] == "Microsoft.Authorization/roleAssignments":
            fn = role_node["function"]
            assert fn["type"] == "subscription_resource_id", where
            assert fn["parameters"]["resource_type"] == "Microsoft.Authorization/roleDefinitions", where
            role = ev.value(fn["parameters"]["resource_name_1"])
            assert role in ALLOWED_ROLES, f"{where}: role {role} is not one of the listed roles"
            scope = cfg.get("scope")
            # A bare resource symbol: the assignment covers that one resource, never the group or subscription.
            assert isinstance(scope, str) and scope in t.resources, f"{where}: scope {scope!r} is not a resource"
            assert cfg["properties"].get("principalType") == "ServicePrincipal", where
            found.append(ALLOWED_ROLES[role])
        else:
            role = ev.value(role_node).rsplit("/", 1)[-1]
            assert role == COSMOS_DATA_CONTRIBUTOR, f"{where}: Cosmos DB role {role} is not Data Contributor"
            found.append("Cosmos DB Built-in Data Contributor")
    for required in [
        "Key Vault Secrets User",
        "Azure Service Bus Data Receiver",
        "Azure Service Bus Data Sender",
        "SignalR Service Owner",
        "Storage Blob Data Owner",
        "Cosmos DB Built-in Data Contributor",
    ]:
        assert required in found, f"{required} is never assigned"


# ---------------------------------------------------------------------------------------------------------------
# Resource settings the system depends on


def module(templates, file: str) -> bicep.Template:
    return templates[MODULES / file]


def the(t: bicep.Template, rtype: str) -> dict:
    [r] = [r for r in t.resources.values() if r["type"] == rtype and not r.get("existing")]
    return resource_config(r)


def iso_minutes(duration: str) -> float:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", duration)
    assert m, duration
    d, h, mi, s = (int(x or 0) for x in m.groups())
    return d * 1440 + h * 60 + mi + s / 60


def hms_minutes(value: str) -> float:
    h, m, s = (int(x) for x in value.split(":"))
    return h * 60 + m + s / 60


def test_sync_queue(templates, main):
    sb = module(templates, "servicebus.bicep")
    ns = the(sb, "Microsoft.ServiceBus/namespaces")
    assert ns["properties"]["disableLocalAuth"] is True
    q = the(sb, "Microsoft.ServiceBus/namespaces/queues")["properties"]
    assert q["deadLetteringOnMessageExpiration"] is True
    assert main.parameters["syncMaxDeliveryCount"]["default"] == 10
    lock = iso_minutes(main.parameters["syncLockDuration"]["default"])
    host = json.loads((REPO / "host.json").read_text())
    timeout = hms_minutes(host["functionTimeout"])
    renewal = hms_minutes(host["extensions"]["serviceBus"]["maxAutoLockRenewalDuration"])
    assert lock <= 5, "Service Bus locks last at most 5 minutes"
    # The message stays locked for the whole invocation: by the lock itself or by the host renewing it.
    assert max(lock, renewal) >= timeout, f"lock {lock} min / renewal {renewal} min < function timeout {timeout} min"
    # The queue the bindings use is the one provisioned.
    assert local_settings()["SYNC_QUEUE_NAME"] == main.parameters["syncQueueName"]["default"]


def test_signalr_upstream_reaches_connection_events(templates):
    spec = json.loads((REPO / "connection-events/function.json").read_text())
    [trigger] = [b for b in spec["bindings"] if b["type"] == "httpTrigger"]
    prefix = json.loads((REPO / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    sig = the(module(templates, "signalr.bicep"), "Microsoft.SignalRService/signalR")
    props = sig["properties"]
    assert {"flag": "ServiceMode", "value": "Serverless"} in props["features"]
    [template] = props["upstream"]["templates"]
    url = template["urlTemplate"]
    assert url.startswith(f"https://${{upstreamHost}}/{prefix}/{trigger['route']}?"), url
    assert "post" in [m.lower() for m in trigger["methods"]]
    assert trigger["authLevel"] == "function"
    # The key travels as a Key Vault reference the service resolves, never as a value.
    assert "code=${upstreamKeyReference}" in url
    ref = bicep.Evaluator(module(templates, "signalr.bicep")).reference("upstreamKeyReference")
    assert ref.startswith("{@Microsoft.KeyVault(SecretUri=") and ref.endswith("/)}"), ref
    assert sig["identity"]["type"] == "UserAssigned"
    assert props["cors"]["allowedOrigins"] == "allowedOrigins"


def test_cosmos_is_serverless_keyless_with_the_store_container(templates, main, app_settings):
    cosmos = module(templates, "cosmos.bicep")
    acct = the(cosmos, "Microsoft.DocumentDB/databaseAccounts")["properties"]
    assert {"name": "EnableServerless"} in acct["capabilities"]
    assert acct["disableLocalAuth"] is True and acct["disableKeyBasedMetadataWriteAccess"] is True
    container = the(cosmos, "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")["properties"]["resource"]
    assert container["partitionKey"]["paths"] == ["partitionKeyPath"]
    assert container["defaultTtl"] == "defaultTtl"
    assert main.parameters["cosmosPartitionKeyPath"]["default"] == "/pk"
    # The store (crates/store, cosmos.rs) relies on the container default TTL being the analytics retention.
    call = next(s for s in main.modules.values() if s["detail"]["path"] == "modules/cosmos.bicep")
    assert call["config"]["params"]["defaultTtl"] == "analyticsTtlSeconds"
    assert app_settings["ANALYTICS_TTL_SECONDS"] == str(main.parameters["analyticsTtlSeconds"]["default"])
    assert {"path": "/*"} in container["indexingPolicy"]["excludedPaths"]


def test_key_vault_is_rbac_with_purge_protection(templates):
    kv = the(module(templates, "keyvault.bicep"), "Microsoft.KeyVault/vaults")["properties"]
    assert kv["enableRbacAuthorization"] is True
    assert kv["enableSoftDelete"] is True
    assert kv["enablePurgeProtection"] is True
    assert "accessPolicies" not in kv


def test_function_app_is_flex_custom_with_one_identity(templates):
    fa = module(templates, "functionapp.bicep")
    plan = the(fa, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan["properties"]["reserved"] is True
    app = the(fa, "Microsoft.Web/sites")
    assert app["kind"] == "functionapp,linux"
    cfg = app["properties"]["functionAppConfig"]
    assert cfg["runtime"] == {"name": "custom", "version": "1.0"}
    assert cfg["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert app["identity"]["type"] == "UserAssigned"
    assert app["properties"]["httpsOnly"] is True
    assert app["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_storage_takes_no_shared_keys(templates):
    st = the(module(templates, "storage.bicep"), "Microsoft.Storage/storageAccounts")["properties"]
    assert st["allowSharedKeyAccess"] is False
    assert st["allowBlobPublicAccess"] is False


def test_dashboard_config_output_is_what_the_page_reads(main, parameters_file):
    """The dashboardConfig output becomes web/dist/config.json: the page's own parser must accept it, with
    sign-in configured and the API on the Function App."""
    params = {k: v["value"] for k, v in parameters_file.items()}
    config = bicep.Evaluator(main, params).value(main.outputs["dashboardConfig"]["value"])
    text = json.dumps(config, ensure_ascii=False).replace(bicep.UNKNOWN, "func-meschain-x.azurewebsites.net")
    parser = REPO / "web/src/lib/auth.js"
    script = (
        f"import {{ parseConfig }} from {json.dumps(parser.as_uri())};"
        "console.log(JSON.stringify(parseConfig(JSON.parse(process.argv[1]))));"
    )
    proc = subprocess.run(["node", "--input-type=module", "-e", script, text], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    parsed = json.loads(proc.stdout)
    assert parsed["apiBase"] == "https://func-meschain-x.azurewebsites.net/api"
    assert parsed["oidc"]["authority"] == params["authOidcIssuer"]
    assert parsed["oidc"]["clientId"] == params["dashboardClientId"]
    assert "devSignIn" not in parsed, "the deployed page must not offer the development sign-in"


def test_amazon_credentials_are_wired_as_key_vault_references_only_with_a_seller(main, app_settings):
    """AMAZON_* settings appear only when amazonSellerId is given; the LWA client secret and refresh token are
    Key Vault references to the secrets README tells the operator to write, never values."""
    text = main.path.read_text()
    assert re.search(r"var amazonSettings = empty\(amazonSellerId\) \? \{\} : \{", text), "Amazon wired unconditionally"
    for setting, secret in (("AMAZON_CLIENT_SECRET", "amazon-client-secret"), ("AMAZON_REFRESH_TOKEN", "amazon-refresh-token")):
        m = KV_REFERENCE.match(app_settings[setting].replace(bicep.UNKNOWN, "x"))
        assert m and m.group(1) == secret, (setting, app_settings[setting])
    for setting in ("AMAZON_SELLER_ID", "AMAZON_MARKETPLACE_ID", "AMAZON_CLIENT_ID"):
        assert setting in app_settings
    assert main.parameters["amazonSellerId"]["default"] == ""

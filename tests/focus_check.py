"""Reads a vctp FOCUS file with Python's csv module, independently of the Rust that wrote it.

Checks every FOCUS 1.2 Mandatory column (FOCUS_Spec tag v1.2, specification/columns) is
present, that each column we write is typed as the spec says (Decimal: plain numbers;
Date/Time: YYYY-MM-DDTHH:mm:ssZ; Key-Value: a JSON object of scalars; allowed values; no
null where the spec forbids one), and prints the BilledCost summed per SubAccountName and
BillingCurrency as JSON: {"tenant": {"EUR": "12.34"}}.

Usage: python3 tests/focus_check.py FILE.csv   (exit 1 with the problems on stderr)
"""

import csv
import json
import re
import sys
from decimal import Decimal, InvalidOperation

# Column -> (data type, nulls allowed) of the FOCUS 1.2 Mandatory columns.
MANDATORY = {
    "BilledCost": ("Decimal", False),
    "BillingAccountId": ("String", False),
    "BillingAccountName": ("String", True),
    "BillingCurrency": ("Currency", False),
    "BillingPeriodEnd": ("DateTime", False),
    "BillingPeriodStart": ("DateTime", False),
    "ChargeCategory": ("String", False),
    "ChargeClass": ("String", True),
    "ChargeDescription": ("String", True),
    "ChargePeriodEnd": ("DateTime", False),
    "ChargePeriodStart": ("DateTime", False),
    "ContractedCost": ("Decimal", False),
    "EffectiveCost": ("Decimal", False),
    "InvoiceIssuerName": ("String", False),
    "ListCost": ("Decimal", False),
    "PricingQuantity": ("Decimal", True),
    "PricingUnit": ("String", True),
    "ProviderName": ("String", False),
    "PublisherName": ("String", False),
    "ServiceCategory": ("String", False),
    "ServiceName": ("String", False),
}
# The Conditional and Recommended columns vctp writes, as the spec types them.
OPTIONAL = {
    "ChargeFrequency": ("String", False),
    "ConsumedQuantity": ("Decimal", True),
    "ConsumedUnit": ("String", True),
    "ContractedUnitPrice": ("Decimal", True),
    "ListUnitPrice": ("Decimal", True),
    "PricingCategory": ("String", True),
    "RegionId": ("String", True),
    "RegionName": ("String", True),
    "ResourceId": ("String", True),
    "ResourceName": ("String", True),
    "ResourceType": ("String", True),
    "ServiceSubcategory": ("String", False),
    "SkuId": ("String", True),
    "SkuPriceId": ("String", True),
    "SubAccountId": ("String", True),
    "SubAccountName": ("String", True),
    "SubAccountType": ("String", True),
    "Tags": ("KeyValue", True),
}
ALLOWED = {
    "ChargeCategory": {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    "ChargeClass": {"", "Correction"},
    "ChargeFrequency": {"One-Time", "Recurring", "Usage-Based"},
    "PricingCategory": {"", "Standard", "Dynamic", "Committed", "Other"},
    "ServiceCategory": {
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute",
        "Databases", "Developer Tools", "Multicloud", "Identity", "Integration",
        "Internet of Things", "Management and Governance", "Media", "Migration", "Mobile",
        "Networking", "Security", "Storage", "Web", "Other",
    },
}
DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def typed(kind, value):
    if kind == "Decimal":
        if not DECIMAL.match(value):
            return False
        try:
            Decimal(value)
        except InvalidOperation:
            return False
        return True
    if kind == "DateTime":
        return bool(DATETIME.match(value))
    if kind == "Currency":
        return bool(CURRENCY.match(value))
    if kind == "KeyValue":
        try:
            tags = json.loads(value)
        except ValueError:
            return False
        return isinstance(tags, dict) and all(
            v is None or isinstance(v, (str, int, float, bool)) for v in tags.values()
        )
    return True


def main(path):
    problems = []
    sums = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for column in MANDATORY:
            if column not in header:
                problems.append(f"mandatory column {column} is missing")
        columns = {**MANDATORY, **OPTIONAL}
        rows = 0
        for number, row in enumerate(reader, start=2):
            rows += 1
            for column, (kind, nullable) in columns.items():
                value = row.get(column)
                if value is None:
                    continue
                if value == "":
                    if not nullable:
                        problems.append(f"line {number}: {column} is null")
                    continue
                if not typed(kind, value):
                    problems.append(f"line {number}: {column} {value!r} is not {kind}")
                if column in ALLOWED and value not in ALLOWED[column]:
                    problems.append(f"line {number}: {column} {value!r} is not allowed")
            if row["ChargePeriodStart"] >= row["ChargePeriodEnd"]:
                problems.append(f"line {number}: the charge period is empty")
            if not (row["BillingPeriodStart"] <= row["ChargePeriodStart"]
                    and row["ChargePeriodEnd"] <= row["BillingPeriodEnd"]):
                problems.append(f"line {number}: the charge period is outside the billing period")
            if row["ChargeCategory"] == "Usage" and row["ConsumedQuantity"] == "":
                problems.append(f"line {number}: a Usage row has no ConsumedQuantity")
            try:
                tenant = sums.setdefault(row["SubAccountName"], {})
                currency = row["BillingCurrency"]
                tenant[currency] = tenant.get(currency, Decimal(0)) + Decimal(row["BilledCost"])
            except InvalidOperation:
                pass
        if rows == 0:
            problems.append("no rows")
    if problems:
        print("\n".join(problems[:50]), file=sys.stderr)
        return 1
    json.dump(
        {t: {c: str(v) for c, v in cs.items()} for t, cs in sums.items()},
        sys.stdout,
        sort_keys=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

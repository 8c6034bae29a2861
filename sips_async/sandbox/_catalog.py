"""The sandbox's reference data: one small, consistent SIPS world.

Customers, the branches they order from with their job accounts, the
products each branch stocks (with variants and units of measure), prices and
historical invoices, in SRS's wire shapes (srs-api.md 3.6, 3.7, 6). The
order flow of srs-api.md 3.0 can be walked through it end to end, and
:func:`drop_reasons` says which orders SRS is reported to queue and then
drop without a webhook (appendix U2 items 1-2).
"""

from __future__ import annotations

from typing import Any, Final

from ..models import OrderRequest

__all__ = [
    "BRANCHES",
    "CUSTOMERS",
    "CUSTOMER_BRANCHES",
    "INVOICES",
    "ORDER_TEMPLATES",
    "PRODUCTS",
    "branch_products",
    "drop_reasons",
    "price_line",
]

#: Customers by account number. ``integrationKey`` is what validate accepts as
#: proof; ``HOLD001`` exists but may not order (``validIndicator`` "N").
CUSTOMERS: Final[dict[str, dict[str, Any]]] = {
    "DEMO001": {
        "customerId": 46225,
        "customerKey": "C-46225",
        "customerName": "Demo Roofing LLC",
        "homeBranch": "BRRIV",
        "homeBranchId": 3,
        "address": "1234 COUNTY LINE ROAD",
        "city": "ONTARIO",
        "state": "NY",
        "zipCode": "14519",
        "phone": "5855550100",
        "fax": "",
        "integrationKey": "DEMO001-KEY",
        "valid": True,
    },
    "DEMO002": {
        "customerId": 46226,
        "customerKey": "C-46226",
        "customerName": "Summit Exteriors Inc",
        "homeBranch": "WSGRA",
        "homeBranchId": 7,
        "address": "88 LAKE MICHIGAN DR",
        "city": "GRAND RAPIDS",
        "state": "MI",
        "zipCode": "49504",
        "phone": "6165550142",
        "fax": "6165550143",
        "integrationKey": "DEMO002-KEY",
        "valid": True,
    },
    "HOLD001": {
        "customerId": 46227,
        "customerKey": "C-46227",
        "customerName": "On Hold Contracting",
        "homeBranch": "BRRIV",
        "homeBranchId": 3,
        "address": "9 MAIN ST",
        "city": "ONTARIO",
        "state": "NY",
        "zipCode": "14519",
        "phone": "5855550199",
        "fax": "",
        "integrationKey": "HOLD001-KEY",
        "valid": False,
    },
}

#: Every branch (``branchLocations``).
BRANCHES: Final[dict[str, dict[str, Any]]] = {
    "BRRIV": {
        "branchCode": "BRRIV",
        "branchName": "SRS Riverside",
        "brand": "Suncoast Roofers Supply",
        "address": "400 RIVER RD",
        "city": "ROCHESTER",
        "state": "NY",
        "zipCode": "14623",
        "phone": "5855550000",
        "shippingMethods": ["Ground Drop", "Roof Load", "Will Call"],
    },
    "WSGRA": {
        "branchCode": "WSGRA",
        "branchName": "SRS Grand Rapids",
        "brand": "Heritage Wholesalers",
        "address": "1 INDUSTRIAL PKWY",
        "city": "GRAND RAPIDS",
        "state": "MI",
        "zipCode": "49512",
        "phone": "6165550000",
        "shippingMethods": ["Ground Drop", "Will Call"],
    },
    "DEMO": {
        "branchCode": "DEMO",
        "branchName": "SRS Demo Branch",
        "brand": "SRS Distribution",
        "address": "7440 STATE HWY 121",
        "city": "MCKINNEY",
        "state": "TX",
        "zipCode": "75070",
        "phone": "9725550000",
        "shippingMethods": ["Ground Drop"],
    },
}

#: ``customerBranchLocations``: each customer's branches and job accounts.
#: No job account is 1: that is SRS's placeholder, dropped downstream.
CUSTOMER_BRANCHES: Final[dict[str, list[dict[str, Any]]]] = {
    "DEMO001": [
        {
            "branchCode": "BRRIV",
            "branchName": "SRS Riverside",
            "distanceFromShipToInMiles": 12.4,
            "shipToSequenceNumber": 1,
            "jobAccounts": [
                {
                    "jobAccountNumber": 78,
                    "jobAccountName": "DEMO001 MAIN YARD",
                    "shipToSequenceNumber": 1,
                },
                {
                    "jobAccountNumber": 79,
                    "jobAccountName": "DEMO001 LAKESIDE JOB",
                    "shipToSequenceNumber": 2,
                },
            ],
        },
        {
            "branchCode": "WSGRA",
            "branchName": "SRS Grand Rapids",
            "distanceFromShipToInMiles": 410.0,
            "shipToSequenceNumber": 1,
            "jobAccounts": [
                {
                    "jobAccountNumber": 80,
                    "jobAccountName": "DEMO001 MICHIGAN",
                    "shipToSequenceNumber": 3,
                }
            ],
        },
    ],
    "DEMO002": [
        {
            "branchCode": "WSGRA",
            "branchName": "SRS Grand Rapids",
            "distanceFromShipToInMiles": 3.1,
            "shipToSequenceNumber": 1,
            "jobAccounts": [
                {
                    "jobAccountNumber": 210,
                    "jobAccountName": "SUMMIT MAIN",
                    "shipToSequenceNumber": 1,
                }
            ],
        },
    ],
    "HOLD001": [],
}


def _variant(color: str, uoms: list[str], default: str) -> dict[str, Any]:
    return {
        "colorName": color,
        "selectedOption": color,
        "uoMs": uoms,
        "defaultUOM": default,
    }


#: Every product (the catalog); ``branches`` says where each is active and
#: ``prices`` is the price per unit of measure (0: "call branch").
PRODUCTS: Final[dict[int, dict[str, Any]]] = {
    75664: {
        "productName": "CertainTeed Presidential Solaris Shingles",
        "itemCode": "CTPRSOL",
        "productVariant": [
            _variant("Country Gray", ["SQ", "BD"], "SQ"),
            _variant("Weathered Wood", ["SQ", "BD"], "SQ"),
        ],
        "branches": ("BRRIV", "WSGRA", "DEMO"),
        "prices": {"SQ": 131, "BD": 44},
    },
    81230: {
        "productName": "GAF Timberline HDZ Shingles",
        "itemCode": "GAFHDZ",
        "productVariant": [
            _variant("Charcoal", ["SQ", "BD"], "BD"),
            _variant("Pewter Gray", ["SQ", "BD"], "BD"),
        ],
        "branches": ("BRRIV", "DEMO"),
        "prices": {"SQ": 118, "BD": 40},
    },
    40112: {
        "productName": "Owens Corning Starter Strip",
        "itemCode": "OCSTART",
        "productVariant": [_variant("N/A", ["BD"], "BD")],
        "branches": ("BRRIV", "WSGRA", "DEMO"),
        "prices": {"BD": 52},
    },
    55001: {
        "productName": "Synthetic Underlayment 10 SQ",
        "itemCode": "SYNUL10",
        "productVariant": [_variant("N/A", ["RL", "PC"], "RL")],
        "branches": ("BRRIV", "DEMO"),
        "prices": {"RL": 0, "PC": 0},  # the branch prices it: "call branch"
    },
    12345: {
        "productName": "Grace Ice & Water Shield",
        "itemCode": "GRACEIWS",
        "productVariant": [_variant("N/A", ["RL"], "RL")],
        "branches": ("WSGRA",),
        "prices": {"RL": 96},
    },
    99901: {
        "productName": "Aluminum Drip Edge (discontinued)",
        "itemCode": "DRIPAL",
        "productVariant": [_variant("White", ["PC"], "PC")],
        "branches": (),
        "prices": {"PC": 9},
    },
}

#: ``orderTemplates`` per customer (``defualtUOM`` is SRS's spelling).
ORDER_TEMPLATES: Final[dict[str, list[dict[str, Any]]]] = {
    "DEMO001": [
        {
            "templateId": 501,
            "name": "Standard re-roof, 30 SQ",
            "description": "Shingles, starter and underlayment",
            "instructionsToBranch": "Call before delivery",
            "products": [
                {
                    "productId": 75664,
                    "defualtUOM": "SQ",
                    "productCategory": "Shingles",
                    "productWebName": "Presidential Solaris",
                    "productOptions": ["Country Gray", "Weathered Wood"],
                    "quantity": 30,
                    "wasteFactor": 0.1,
                    "userSort": 1,
                },
                {
                    "productId": 40112,
                    "defualtUOM": "BD",
                    "productCategory": "Starter",
                    "productWebName": "Starter Strip",
                    "productOptions": [],
                    "quantity": 4,
                    "wasteFactor": 0,
                    "userSort": 2,
                },
            ],
        }
    ],
}

#: Historical invoices (SRS's own example first, srs-api.md 3.6).
INVOICES: Final[list[dict[str, Any]]] = [
    {
        "invoiceNumber": "0019073403-001",
        "orderNumber": 19073403,
        "shipmentNumber": 1,
        "shipToSequenceNumber": "1",
        "customerCode": "DEMO001",
        "branchCode": "BRRIV",
        "invoiceDate": "2020-09-22T00:00:00",
        "invoiceSubTotal": 3133.99,
        "invoiceCharges": 30,
        "invoiceTax": 189.84,
        "invoiceTotal": 3353.83,
        "paymentStatus": "Paid",
        "SOTypeCode": "SO",
        "PONumber": "112233",
        "salesTypeCode": "WHSE",
        "jobNumber": "135",
        "shipToAddress1": "1234 COUNTY LINE ROAD",
        "shipToAddress2": "",
        "shipToAddress3": "",
    },
    {
        "invoiceNumber": "0016627333-001",
        "orderNumber": 16627333,
        "shipmentNumber": 1,
        "shipToSequenceNumber": "1",
        "customerCode": "DEMO002",
        "branchCode": "WSGRA",
        "invoiceDate": "2024-06-11T00:00:00",
        "invoiceSubTotal": 980.0,
        "invoiceCharges": 0,
        "invoiceTax": 58.8,
        "invoiceTotal": 1038.8,
        "paymentStatus": "Open",
        "SOTypeCode": "SO",
        "PONumber": "SUM-77",
        "salesTypeCode": "WHSE",
        "jobNumber": "",
        "shipToAddress1": "88 LAKE MICHIGAN DR",
        "shipToAddress2": "",
        "shipToAddress3": "",
    },
]


def branch_products(branch_code: str) -> list[dict[str, Any]] | None:
    """``activeBranchProducts`` of a branch; ``None`` for an unknown branch."""
    code = branch_code.strip().upper()
    if code not in BRANCHES:
        return None
    return [
        {
            "productId": product_id,
            "productName": p["productName"],
            "productOptions": [
                v["colorName"] for v in p["productVariant"] if v["colorName"] != "N/A"
            ],
            "productVariant": [dict(v) for v in p["productVariant"]],
            "productImageUrl": None,
        }
        for product_id, p in PRODUCTS.items()
        if code in p["branches"]
    ]


def price_line(
    item: dict[str, Any], *, branch_code: str, transaction_id: str
) -> dict[str, Any]:
    """One ``POST /products/v2/price`` answer line for one requested item."""
    product_id = item.get("productId")
    product = PRODUCTS.get(product_id) if isinstance(product_id, int) else None
    uom = str(item.get("uom") or "")
    line: dict[str, Any] = {
        "itemCode": product["itemCode"] if product else None,
        "productId": product_id,
        "productName": product["productName"] if product else item.get("productName"),
        "productOptions": item.get("productOptions") or [],
        "priceUOM": uom,
        "requestedUOM": uom,
        "uomConversionFactor": 1,
        "price": 0,
        "availableStatus": "Call branch for availability",
        "transactionId": transaction_id,
        "message": "",
        "messageCode": 0,
    }
    if product is None or branch_code.strip().upper() not in product["branches"]:
        line["message"] = "Product is not available at this branch"
        line["messageCode"] = 2
        return line
    prices: dict[str, int] = product["prices"]
    if uom not in prices:
        line["message"] = f"UOM {uom} is not valid for this product"
        line["messageCode"] = 3
        line["priceUOM"] = next(iter(prices))
        return line
    line["price"] = prices[uom]
    line["availableStatus"] = "Available" if prices[uom] else "Call branch"
    return line


def drop_reasons(order: OrderRequest) -> tuple[str, ...]:
    """Why SRS would queue ``order`` and then drop it without a webhook.

    Exactly the triggers integrators report (srs-api.md appendix U2 items
    1-2): the placeholder job account 1, a product not active at the branch,
    a unit of measure the variant does not offer, a product with several
    variants sent without ``option``. Empty when none applies.
    """
    reasons: list[str] = []
    if order.job_account_number is not None and order.job_account_number <= 1:
        reasons.append("jobAccountNumber: placeholder job account")
    branch = (order.branch_code or "").strip().upper()
    for i, line in enumerate(order.order_line_item_details or ()):
        where = f"orderLineItemDetails[{i}]"
        product = PRODUCTS.get(line.product_id) if line.product_id else None
        if product is None or branch not in product["branches"]:
            reasons.append(f"{where}.productId: not active at {branch}")
            continue
        variants: list[dict[str, Any]] = product["productVariant"]
        option = (line.option or "").strip()
        chosen = [v for v in variants if v["colorName"].casefold() == option.casefold()]
        if not chosen:
            if len(variants) > 1:
                reasons.append(f"{where}.option: missing or unknown, several variants")
                continue
            chosen = variants
        if (line.uom or "") not in chosen[0]["uoMs"]:
            reasons.append(f"{where}.uom: not a unit of the variant")
    return tuple(reasons)

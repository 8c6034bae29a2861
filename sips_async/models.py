"""Typed models for everything SIPS sends and receives.

Every model is a frozen :class:`msgspec.Struct`. Python attributes are
snake_case; the wire names are SRS's own (camelCase, with its odd spellings
such as ``transactionID`` and ``orderLineItemDetails``). Models that SRS sends
ignore unknown fields, so a field SRS adds tomorrow never breaks a decode.

This module imports nothing else from the package: it is pure data.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "CALL_BRANCH",
    "FINAL_STATUSES",
    "ActiveProduct",
    "Address",
    "Area",
    "BranchLocation",
    "CatalogItem",
    "CustomerBranch",
    "CustomerDetails",
    "CustomerValidation",
    "InvoiceHeader",
    "InvoiceSummary",
    "JobAccount",
    "OrderProblem",
    "OrderSummary",
    "OrderTemplate",
    "PriceItem",
    "PriceLine",
    "ProductVariant",
    "TemplateProduct",
    "City",
    "ContactAddress",
    "Customer",
    "CustomerContactInfo",
    "DeliveryAgent",
    "Invoice",
    "LastStatus",
    "LineItem",
    "OrderRequest",
    "OrderStatus",
    "OrderUpdate",
    "PoDetails",
    "PostalCode",
    "SalesAgent",
    "SalesOrder",
    "SalesOrderProduct",
    "ShipTo",
    "State",
    "SubmitResult",
    "TokenResponse",
    "WebhookEvent",
]


class _Request(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True
):
    """Base of the request-side models: camelCase on the wire, ``None`` omitted."""


class _Response(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the models SRS sends: unknown fields are ignored."""


# --------------------------------------------------------------------------
# Submit Order V2 body (srs-api.md 3.1)
# --------------------------------------------------------------------------


class ShipTo(_Request, frozen=True):
    """Where the order is delivered (``shipTo``)."""

    name: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    address_line3: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None


class PoDetails(_Request, frozen=True):
    """Purchase-order details (``poDetails``).

    ``po_number`` comes back in every webhook as ``subscriberReferenceNum``;
    keeping it unique is the partner's job.
    """

    po_number: str | None = None
    reference: str | None = None
    job_number: str | None = None
    order_date: str | None = None
    expected_delivery_date: str | None = None
    expected_delivery_time: str | None = None
    order_type: str | None = None
    shipping_method: str | None = None


class LineItem(_Request, frozen=True):
    """One order line (an element of ``orderLineItemDetails``).

    ``quantity`` and ``price`` are integers, as SRS's Submit V2 reference
    page declares them (``srs-api.md`` appendix U1.1): a fractional quantity
    is refused with :class:`~sips_async.errors.SipsValidationError`, never
    rounded. ``option`` is the colour or variant (``"N/A"`` when the product
    has only one).
    """

    product_id: int | None = None
    product_name: str | None = None
    option: str | None = None
    quantity: Annotated[int, msgspec.Meta(gt=0)] | None = None
    price: Annotated[int, msgspec.Meta(ge=0)] | None = None
    customer_item: str | None = None
    uom: str | None = None


class ContactAddress(_Request, frozen=True):
    """The customer contact's postal address."""

    address_line1: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None


class CustomerContactInfo(_Request, frozen=True):
    """Who SRS calls about the order (``customerContactInfo``)."""

    customer_contact_name: str | None = None
    customer_contact_phone: str | None = None
    customer_contact_email: str | None = None
    customer_contact_address: ContactAddress | None = None
    additional_contact_emails: list[str] | None = None


def _new_transaction_id() -> str:
    return str(uuid.uuid4())


def _local_now() -> str:
    # SRS's example is a local datetime with milliseconds and no zone.
    return dt.datetime.now().isoformat(timespec="milliseconds")


class OrderRequest(_Request, frozen=True):
    """The SIPS V2 Submit Order body.

    On the wire every key of SRS's Submit V2 reference page is sent, ``""``
    where a field is ``None`` (``SipsClient(submit_body="minimal")`` sends
    only the fields set). ``job_account_number`` comes from
    ``client.branches.for_customer()``; 1 is SRS's placeholder, which SRS
    queues and then drops (``client.orders.check()`` flags it).

    Required fields are checked by the client before a request leaves (see
    ``REQUIRED_FIELDS``), so a missing one raises
    :class:`~sips_async.errors.FieldsMissingError` naming every missing field
    instead of a round trip to SRS. ``transaction_id`` is generated (uuid4)
    when not given; it is the key that ties webhooks back to this order and is
    reused, unchanged, on every retry.

    Example::

        order = OrderRequest(
            source_system="ACME",
            customer_code="DEMO001",
            branch_code="BRRIV",
            job_account_number=78,  # never 1: SRS's placeholder
            po_details=PoDetails(po_number="5641-8Test"),
            order_line_item_details=[
                LineItem(product_id=75664, quantity=1, uom="SQ"),
            ],
        )
    """

    source_system: str | None = None
    customer_code: str | None = None
    job_account_number: int | None = None
    branch_code: str | None = None
    account_number: str | None = None
    transaction_id: str = msgspec.field(
        default_factory=_new_transaction_id, name="transactionID"
    )
    transaction_date: str = msgspec.field(default_factory=_local_now)
    notes: str | None = None
    ship_to: ShipTo | None = None
    po_details: PoDetails | None = None
    order_line_item_details: list[LineItem] | None = None
    customer_contact_info: CustomerContactInfo | None = None
    #: V1's ship-to sequence (``customerBranchLocations`` carries it); not in
    #: SRS's V2 example, sent only when given.
    ship_to_sequence_number: int | None = None


#: Wire paths that must be present (and non-empty) before an order is sent.
REQUIRED_FIELDS: Final[tuple[str, ...]] = (
    "sourceSystem",
    "customerCode",
    "jobAccountNumber",
    "branchCode",
    "orderLineItemDetails",
)
#: Wire names required on every line of ``orderLineItemDetails``.
REQUIRED_LINE_FIELDS: Final[tuple[str, ...]] = ("productId", "quantity", "uom")


# --------------------------------------------------------------------------
# Submit / token responses
# --------------------------------------------------------------------------


class SubmitResult(_Response, frozen=True, gc=False):
    """What SRS answered to a submit.

    ``queued`` is true when SRS put the order in its queue ("Order Queued" or
    a ``queueID``): that is an acknowledgement of receipt, not yet an order in
    SRS's ERP.
    """

    message: str = ""
    transaction_id: str | None = None
    order_id: str | None = None
    queue_id: str | None = None

    @property
    def queued(self) -> bool:
        """Whether SRS queued the order rather than placing it synchronously."""
        return bool(self.queue_id) or "queued" in self.message.lower()


class TokenResponse(_Response, frozen=True):
    """The OAuth token endpoint's answer (``expires_in`` may be a string)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int | str | None = None
    ext_expires_in: int | str | None = None

    def lifetime(self, default: float) -> float:
        """Return the token lifetime in seconds, ``default`` when unusable."""
        try:
            value = float(self.expires_in) if self.expires_in is not None else default
        except ValueError:
            return default
        return value if value > 0 else default

    def __repr__(self) -> str:
        return f"TokenResponse(token_type={self.token_type!r}, access_token='***')"


# --------------------------------------------------------------------------
# Order details: the seed "Fetch a Sales Order With ID"
# --------------------------------------------------------------------------


class OrderStatus(enum.StrEnum):
    """The ten order statuses of the seed's order-details document.

    Status text from SRS that is none of these is kept verbatim as ``str``
    (see :meth:`parse`), never an error.
    """

    PLACED = "Placed"
    PROCESSED = "Processed"
    IN_REVIEW = "In Review/Invoice Dept"
    SHIPMENT_CREATED = "Shipment Created"
    DELIVERED = "Delivered"
    CANCELLED = "Cancelled"
    RETURNED = "Returned"
    INVOICE_GENERATED = "Invoice Generated"
    UNDELIVERED = "Undelivered"
    POSTPONED = "Postponed"

    @classmethod
    def parse(cls, text: str | None) -> OrderStatus | str | None:
        """Map status text to a member, case and spacing aside; else keep it."""
        if text is None:
            return None
        parsed = _PARSED.get(text)  # SRS uses a handful of texts
        if parsed is None:
            member = _STATUS_LOOKUP.get(" ".join(text.split()).casefold())
            parsed = member if member is not None else text
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[text] = parsed
        return parsed


_STATUS_LOOKUP: Final[dict[str, OrderStatus]] = {
    s.value.casefold(): s for s in OrderStatus
}
#: Texts already parsed (members by their own spelling first), bounded:
#: cleared when full, then refilled from the lookup above.
_PARSED: Final[dict[str, OrderStatus | str]] = {s.value: s for s in OrderStatus}
_PARSED_MAX: Final = 256

#: Statuses after which SRS sends nothing more that changes the order's fate.
FINAL_STATUSES: Final[frozenset[OrderStatus]] = frozenset(
    {OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.RETURNED}
)
_DELIVERED: Final = OrderStatus.DELIVERED
_CANCELLED: Final = OrderStatus.CANCELLED
_RETURNED: Final = OrderStatus.RETURNED


class SalesOrderProduct(_Response, frozen=True):
    """One product line of a sales order."""

    id: int | None = None
    sku: str | None = None
    name: str | None = None
    quantity: float | None = None
    price: float | None = None


class PostalCode(_Response, frozen=True):
    """A ZIP code record."""

    id: int | None = None
    code: str | None = None


class State(_Response, frozen=True):
    """A state record."""

    id: int | None = None
    code: str | None = None
    name: str | None = None


class City(_Response, frozen=True):
    """A city record with its state."""

    id: int | None = None
    name: str | None = None
    code: str | None = None
    state: State | None = None


class Area(_Response, frozen=True):
    """An area record with its city."""

    id: int | None = None
    name: str | None = None
    area_code: str | None = None
    city: City | None = None


class Address(_Response, frozen=True):
    """A customer address (``[]`` on the wire decodes to ``None``)."""

    addressline1: str | None = None
    addressline2: str | None = None
    area: Area | None = None
    postalcode: PostalCode | None = None


class Customer(_Response, frozen=True):
    """The customer an order belongs to."""

    id: int | None = None
    contact_person_name: str | None = None
    company_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    contactperson_number: str | None = None
    company_phone: str | None = None
    gst_treatment: str | None = None
    gstin: str | None = None
    customer_code: str | None = None
    address: Address | None = None


class SalesAgent(_Response, frozen=True):
    """The sales agent of an order."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    mobile_number: str | None = None
    avatar: str | None = None
    email: str | None = None


class DeliveryAgent(_Response, frozen=True):
    """The delivery agent of an order."""

    id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None


class LastStatus(_Response, frozen=True):
    """The order's current status record."""

    name: str | None = None


class Invoice(_Response, frozen=True):
    """One invoice of an order (an order may have several)."""

    id: int | None = None
    invoice_number: str | None = None
    date: dt.date | None = None
    due_date: dt.date | None = None
    total_amount: float | None = None
    discount_amount: float | None = None
    returned_amount: float | None = None
    invoice_amount: float | None = None
    cgst: float | None = None
    sgst: float | None = None
    igst: float | None = None


class SalesOrder(_Response, frozen=True):
    """A sales order as ``GET /orders/{id}`` returns it (inside ``data``).

    Objects that the server sends as ``[]`` when empty (``salesagent`` in the
    seed's sample, ``customer.address``) decode to ``None``.
    """

    id: int
    order_no: str | None = None
    item_total_amount: float | None = None
    discount_amount: float | None = None
    return_total_amount: float | None = None
    billable_amount: float | None = None
    date: dt.date | None = None
    products: list[SalesOrderProduct] = []
    customer: Customer | None = None
    address: Address | None = None
    salesagent: SalesAgent | None = None
    deliveryagent: DeliveryAgent | None = None
    laststatus: LastStatus | None = None
    invoices: list[Invoice] = []

    @property
    def status(self) -> OrderStatus | str | None:
        """The current status as an :class:`OrderStatus`, or its raw text."""
        return OrderStatus.parse(self.laststatus.name if self.laststatus else None)


# --------------------------------------------------------------------------
# Webhooks (srs-api.md 4.3)
# --------------------------------------------------------------------------

#: Scalar values SRS might send for an id (a number or a string).
_Id = str | int | None


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True, rename="camel", gc=False):
    """One SRS webhook body exactly as posted: flat JSON, all fields optional.

    ``subscriber_reference_num`` is the PO number, ``..._num2`` the SRS order
    id and ``..._num3`` our ``transactionID``.
    """

    event_id: _Id = None
    event_type: str | None = None
    event_status: str | None = None
    event_date_time: str | None = None
    subscriber_reference_num: _Id = None
    subscriber_reference_num2: _Id = None
    subscriber_reference_num3: _Id = None
    error_code: _Id = None
    error_message: str | None = None


_REJECTED_WORDS: Final[tuple[str, ...]] = ("reject", "declin", "fail", "error")
# The same words in one pattern: ``rejected`` runs on every update received.
_REJECTED: Final = re.compile("|".join(map(re.escape, _REJECTED_WORDS)))
#: Status texts already judged (SRS uses a handful): ``rejected`` runs
#: several times per update received. Bounded: cleared when it fills.
_JUDGED: Final[dict[str, bool]] = {}
_JUDGED_MAX: Final = 256


def _rejects(status: str) -> bool:
    verdict = _JUDGED.get(status)
    if verdict is None:
        verdict = _REJECTED.search(status.casefold()) is not None
        if len(_JUDGED) >= _JUDGED_MAX:
            _JUDGED.clear()
        _JUDGED[status] = verdict
    return verdict


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One normalized order-status update received from SRS.

    (``gc=False``: its fields are immutable scalars, so it can never be part
    of a reference cycle, and thousands kept in histories cost the garbage
    collector nothing.)

    ``status`` is an :class:`OrderStatus` when the text is one of the ten
    known statuses, else the raw text. ``occurred_at`` is SRS's
    ``eventDateTime`` (``None`` when absent or unreadable); ``received_at`` is
    when this process received it (UTC). ``raw`` keeps the wire bytes.
    Every store reads it back exactly as it was recorded.
    """

    event_id: str
    event_type: str
    event_status: str | None = None
    status: OrderStatus | str | None = None
    transaction_id: str | None = None
    order_id: str | None = None
    po_number: str | None = None
    occurred_at: dt.datetime | None = None
    received_at: dt.datetime = msgspec.field(
        default_factory=lambda: dt.datetime.now(dt.UTC)
    )
    error_code: str | None = None
    error_message: str | None = None
    raw: bytes = b""
    #: ``"webhook"`` for an update SRS posted, ``"poll"`` for one made from
    #: SRS's answer when the SDK asked about the order.
    source: str = "webhook"

    @property
    def rejected(self) -> bool:
        """Whether this update says SRS rejected the queued order.

        An ``OA`` whose status reads rejected/declined/failed/error, or any
        event carrying an ``errorCode``. (An ``OC`` before any acknowledgement
        is judged by the tracker, which knows the order's history.)
        """
        if self.error_code:
            return True
        if self.event_type == "OA" and self.event_status:
            return _rejects(self.event_status)
        return False

    @property
    def accepted(self) -> bool:
        """Whether this is an acknowledgement (``OA``) that is not a rejection."""
        return self.event_type == "OA" and not self.rejected

    @property
    def is_final(self) -> bool:
        """Whether nothing further is expected for the order after this update."""
        # Runs for every update recorded: the cheap tests first, and the
        # final statuses by identity (an Enum's hash is Python code).
        status = self.status
        return (
            self.event_type == "OC"
            or status is _DELIVERED
            or status is _CANCELLED
            or status is _RETURNED
            or self.rejected
        )

    def __repr__(self) -> str:
        return (
            f"OrderUpdate(event_type={self.event_type!r}, "
            f"event_id={self.event_id!r}, status={self.status!r}, "
            f"transaction_id={self.transaction_id!r}, order_id={self.order_id!r})"
        )


# --------------------------------------------------------------------------
# The rest of the order flow (srs-api.md 3.0, 3.3, 3.6, 3.7, 6)
#
# Typed where SRS publishes the shape; lenient where it does not: known
# fields typed, everything SRS sent kept in ``raw`` (a ``dict``).
# --------------------------------------------------------------------------

#: What SRS asks partners to show instead of a price of 0 (srs-api.md 6).
CALL_BRANCH: Final = "Please call branch for product pricing"


class OrderProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One reason an order would be refused or silently dropped by SRS.

    Attributes:
        field: the wire path, e.g. ``orderLineItemDetails[0].uom``.
        message: what is wrong and what to do, for a person.
        suggestion: a value that would fix it, when there is one
            (the variant's ``defaultUOM``, a real job account number...).
    """

    field: str
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CustomerValidation(_Response, frozen=True, rename="camel"):
    """``GET /customers/validate/`` (srs-api.md 3.7, documented).

    ``valid_indicator`` is ``"Y"`` on SRS's reference page and ``true`` in
    its introduction; :attr:`valid` accepts both.
    """

    valid_indicator: str | bool | None = None
    customer_id: int | None = None
    account_number: str | None = None
    customer_name: str | None = None
    home_branch_id: str | int | None = None
    customer_address1: str | None = None
    customer_address2: str | None = None
    customer_address3: str | None = None
    customer_city: str | None = None
    customer_state: str | None = None
    customer_zip_code: str | None = None
    customer_phone: str | None = None

    @property
    def valid(self) -> bool:
        """Whether SRS lets this customer order (``"Y"`` or ``true``)."""
        value = self.valid_indicator
        if isinstance(value, bool):
            return value
        return isinstance(value, str) and value.strip().upper() in ("Y", "TRUE")


class CustomerDetails(_Response, frozen=True, rename="camel"):
    """``GET /customers/{customerCode}`` (srs-api.md 6; address keys unknown)."""

    customer_id: int | None = None
    customer_key: str | int | None = None
    customer_code: str | None = None
    customer_name: str | None = None
    phone: str | None = None
    fax: str | None = None
    home_branch: str | None = None
    home_branch_id: int | str | None = None
    non_saleable_indicator: str | None = None
    raw: dict[str, Any] = {}


class TemplateProduct(_Response, frozen=True, rename="camel"):
    """One product of an order template (``defualtUOM`` is SRS's spelling)."""

    product_id: int | None = None
    default_uom: str | None = msgspec.field(default=None, name="defualtUOM")
    product_category: str | None = None
    product_web_name: str | None = None
    product_options: list[str] = []
    quantity: float | None = None
    waste_factor: float | None = None
    user_sort: int | None = None


class OrderTemplate(_Response, frozen=True, rename="camel"):
    """``GET /customers/v2/orderTemplates/{customerCode}`` (documented)."""

    template_id: int | str | None = None
    name: str | None = None
    description: str | None = None
    instructions_to_branch: str | None = None
    products: list[TemplateProduct] = []


class BranchLocation(_Response, frozen=True, rename="camel"):
    """One branch of ``GET /branches/v2/branchLocations`` (shape guessed)."""

    branch_code: str | None = None
    branch_name: str | None = None
    brand: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    phone: str | None = None
    shipping_methods: list[str] = []
    raw: dict[str, Any] = {}


class JobAccount(_Response, frozen=True, rename="camel"):
    """A job account: the numeric ``jobAccountNumber`` every order needs."""

    job_account_number: int
    job_account_name: str | None = None
    ship_to_sequence_number: int | None = None


class CustomerBranch(_Response, frozen=True, rename="camel"):
    """One branch of ``GET /branches/v2/customerBranchLocations/{code}``.

    Documented (srs-api.md 6; ``shipToSequenceNumber`` per appendix U1.2).
    """

    branch_code: str
    branch_name: str | None = None
    distance_from_ship_to_in_miles: float | None = None
    ship_to_sequence_number: int | None = None
    job_accounts: list[JobAccount] = []


class ProductVariant(_Response, frozen=True, rename="camel"):
    """A colour/size variant of an active product, with its units of measure.

    ``uoMs`` is the casing integrators read from SRS (appendix U2.3).
    """

    color_name: str | None = None
    selected_option: str | None = None
    uoms: list[str] = msgspec.field(default_factory=list, name="uoMs")
    default_uom: str | None = msgspec.field(default=None, name="defaultUOM")

    @property
    def option(self) -> str | None:
        """The text to send as ``option`` for this variant."""
        return self.selected_option or self.color_name


class ActiveProduct(_Response, frozen=True, rename="camel"):
    """One product of ``GET /branches/v2/activeBranchProducts/{branchCode}``.

    Fields as integrators read them (appendix U2.3, second-hand); ``raw``
    keeps what SRS sent.
    """

    product_id: int
    product_name: str | None = None
    product_options: list[str] = []
    product_variant: list[ProductVariant] = []
    product_image_url: str | None = None
    raw: dict[str, Any] = {}


class PriceItem(msgspec.Struct, frozen=True, kw_only=True):
    """One product to price (an element of ``productList``)."""

    product_id: int
    quantity: int
    uom: str
    product_name: str = ""
    product_options: list[str] = []


class PriceLine(_Response, frozen=True, rename="camel"):
    """One line of ``POST /products/v2/price`` (documented, srs-api.md 6).

    A ``price`` of 0 means "call the branch", never $0: :attr:`amount` is
    then ``None`` and :attr:`display` is SRS's mandated text.
    ``message_code`` 0 means the line was priced.
    """

    item_code: str | None = None
    product_id: int | None = None
    product_name: str | None = None
    product_options: list[str] = []
    price_uom: str | None = msgspec.field(default=None, name="priceUOM")
    requested_uom: str | None = msgspec.field(default=None, name="requestedUOM")
    uom_conversion_factor: float | None = None
    price: float | None = None
    available_status: str | None = None
    transaction_id: str | None = None
    message: str | None = None
    message_code: int | str | None = None

    @property
    def call_branch(self) -> bool:
        """Whether SRS gave no price (0): the partner must say "call branch"."""
        return not self.price

    @property
    def amount(self) -> float | None:
        """The unit price, or ``None`` when the branch must be called."""
        return None if self.call_branch else self.price

    @property
    def display(self) -> str:
        """The price as SRS requires it to be shown to a person."""
        if self.call_branch:
            return CALL_BRANCH
        return f"${self.price:,.2f}"


class CatalogItem(_Response, frozen=True, rename="camel"):
    """One item of ``GET /products/v2/catalog`` (shape not published: lenient)."""

    product_id: int | None = None
    product_name: str | None = None
    item_code: str | None = None
    raw: dict[str, Any] = {}


class InvoiceSummary(_Response, frozen=True, rename="camel"):
    """One entry of ``POST /invoices/list``'s ``invoiceList`` (partly documented)."""

    invoice_number: str
    order_number: int | None = None
    shipment_number: int | None = None
    customer_code: str | None = None
    invoice_date: str | None = None
    raw: dict[str, Any] = {}


class InvoiceHeader(_Response, frozen=True):
    """``GET /invoices/{invoiceNumber}``'s ``invoiceHeader`` (partly documented)."""

    invoice_number: str = msgspec.field(name="invoiceNumber")
    order_number: int | None = msgspec.field(default=None, name="orderNumber")
    shipment_number: int | None = msgspec.field(default=None, name="shipmentNumber")
    ship_to_sequence_number: str | int | None = msgspec.field(
        default=None, name="shipToSequenceNumber"
    )
    customer_code: str | None = msgspec.field(default=None, name="customerCode")
    invoice_date: str | None = msgspec.field(default=None, name="invoiceDate")
    invoice_sub_total: float | None = msgspec.field(
        default=None, name="invoiceSubTotal"
    )
    invoice_charges: float | None = msgspec.field(default=None, name="invoiceCharges")
    invoice_tax: float | None = msgspec.field(default=None, name="invoiceTax")
    invoice_total: float | None = msgspec.field(default=None, name="invoiceTotal")
    payment_status: str | None = msgspec.field(default=None, name="paymentStatus")
    so_type_code: str | None = msgspec.field(default=None, name="SOTypeCode")
    po_number: str | None = msgspec.field(default=None, name="PONumber")
    sales_type_code: str | None = msgspec.field(default=None, name="salesTypeCode")
    job_number: str | None = msgspec.field(default=None, name="jobNumber")
    raw: dict[str, Any] = {}


class OrderSummary(_Response, frozen=True, rename="camel"):
    """One order of ``POST /orders/List`` (response not published: lenient).

    The typed fields are guesses named after the request's own keys; read
    ``raw`` for what SRS really sent.
    """

    order_id: int | str | None = None
    order_number: int | str | None = None
    po_number: str | None = msgspec.field(default=None, name="PONumber")
    order_status: str | None = None
    branch_code: str | None = None
    customer_number: str | None = None
    transaction_id: str | None = msgspec.field(default=None, name="transactionID")
    order_date: str | None = None
    raw: dict[str, Any] = {}

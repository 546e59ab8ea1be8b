"""Custom Great Expectations expectations that reuse the audit's own rules.

Importing this module registers two expectation types with GX, usable in any suite JSON:

- ``expect_column_values_to_be_well_formed_urls``: every non-empty value is a URL that the
  ``malformed_url`` check finds nothing wrong with (the same rules, one implementation);
- ``expect_column_values_to_not_be_page_furniture``: no value is a line of page furniture
  ("Subscribe", "Get trending papers in your email inbox!", a date header, ...).

It imports great_expectations (about 3 s), so :mod:`audit.expectations` imports it only when
suites run. A user's own expectation class is written the same way, in a ``.py`` file next to
the suites (see the README).

Example (suite JSON):
    {"type": "expect_column_values_to_be_well_formed_urls", "kwargs": {"column": "url"}}
"""

from __future__ import annotations

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from audit.checks.malformed_url import url_findings
from audit.furniture import is_furniture


def is_well_formed_url(value: str) -> bool:
    """True for an empty value or a URL the ``malformed_url`` check has no finding for."""
    return value == "" or not url_findings("", "url", value)


class ColumnValuesWellFormedUrl(ColumnMapMetricProvider):
    condition_metric_name = "column_values.well_formed_url"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return column.map(lambda value: is_well_formed_url(str(value)))


class ExpectColumnValuesToBeWellFormedUrls(ColumnMapExpectation):
    """Expect each non-empty value to be a well-formed http(s) URL (the malformed_url rules)."""

    map_metric = "column_values.well_formed_url"
    success_keys = ("mostly",)


class ColumnValuesNotPageFurniture(ColumnMapMetricProvider):
    condition_metric_name = "column_values.not_page_furniture"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return column.map(lambda value: not is_furniture(str(value).strip()))


class ExpectColumnValuesToNotBePageFurniture(ColumnMapExpectation):
    """Expect no value to be a line of page furniture (see :mod:`audit.furniture`)."""

    map_metric = "column_values.not_page_furniture"
    success_keys = ("mostly",)

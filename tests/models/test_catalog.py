"""The backbone catalogue and what works offline."""

from tlearn.models.catalog import catalog


def test_catalog_reports_offline_availability():
    entries = {e.name: e for e in catalog()}
    assert entries["efficientnet_lite0"].offline is True and entries["efficientnet_lite0"].params_millions == 4.7
    assert entries["resnet50"].params_millions == 25.6 and entries["resnet50"].image_size == 224
    assert entries["resnet50"].offline is False  # the test's private torch cache is empty
    offline = catalog(offline_only=True)
    assert [e.name for e in offline] == ["efficientnet_lite0"]

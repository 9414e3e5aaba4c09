"""KubeNodeAPI (the official client underneath) against the fake served over HTTP: requests
are well-formed, and HTTP errors and in-band watch errors map onto our exception types."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from fakekube.nodes import FakeNodeAPI
from fakekube.server import FakeApiServer
from lxcri_agent.kube.api import ApiError, Conflict, Expired, NotFound
from lxcri_agent.kube.client import KubeNodeAPI


@pytest.fixture
def served() -> Iterator[tuple[FakeNodeAPI, KubeNodeAPI]]:
    fake = FakeNodeAPI()
    with FakeApiServer(fake) as server:
        config = client.Configuration(host=server.url)
        with client.ApiClient(config) as api_client:
            yield fake, KubeNodeAPI(client.CoreV1Api(api_client))


def test_get_list_patch_and_event(served: tuple[FakeNodeAPI, KubeNodeAPI]) -> None:
    fake, api = served
    fake.add_node("n1", labels={"a": "1"})
    assert api.get_node("n1")["metadata"]["labels"] == {"a": "1"}
    items, rv = api.list_nodes()
    assert [n["metadata"]["name"] for n in items] == ["n1"] and rv
    out = api.patch_node("n1", {"metadata": {"labels": {"a": None, "b": "2"}}})  # a merge patch
    assert out["metadata"]["labels"] == {"b": "2"}
    api.create_event("default", {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "x."},
                                 "involvedObject": {"kind": "Node", "name": "n1"}, "reason": "R"})
    assert fake.events[-1]["namespace"] == "default"


def test_errors_map_to_our_types(served: tuple[FakeNodeAPI, KubeNodeAPI]) -> None:
    fake, api = served
    fake.add_node("n1")
    with pytest.raises(NotFound):
        api.get_node("nope")
    stale = api.get_node("n1")["metadata"]["resourceVersion"]
    api.patch_node("n1", {"metadata": {"labels": {"x": "1"}}})
    with pytest.raises(Conflict):
        api.patch_node("n1", {"metadata": {"resourceVersion": stale, "labels": {"x": "2"}}})
    fake.fail("patch", ApiError(500, "etcd"))
    with pytest.raises(ApiError) as err:
        api.patch_node("n1", {"metadata": {"labels": {"x": "3"}}})
    assert err.value.status == 500


def test_watch_streams_events_and_reports_expiry(served: tuple[FakeNodeAPI, KubeNodeAPI]) -> None:
    fake, api = served
    fake.add_node("n1")
    _, rv = api.list_nodes()
    fake.add_node("n2")
    fake.patch_node("n1", {"metadata": {"labels": {"x": "1"}}})
    events = list(api.watch_nodes(rv, timeout_seconds=1))
    assert [(e.type, e.node["metadata"]["name"]) for e in events] == [("ADDED", "n2"), ("MODIFIED", "n1")]
    fake.compact()
    fake.add_node("n3")
    with pytest.raises(Expired):
        list(api.watch_nodes(rv, timeout_seconds=1))


def test_unreachable_server_is_an_api_error() -> None:
    api = KubeNodeAPI(client.CoreV1Api(client.ApiClient(client.Configuration(host="http://127.0.0.1:9"))))
    with pytest.raises(ApiError) as err:
        api.get_node("n1")
    assert err.value.status == 0

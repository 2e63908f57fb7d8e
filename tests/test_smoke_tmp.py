def test_load(loaded, api):
    r = api.get("sites")
    assert r.status_code == 200, r.text
    print(r.json()["numberMatched"])

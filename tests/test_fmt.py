

def test_labelled_and_task_rows_say_unread_for_unread_rows():
    df = make_frame(
        status=["success", None],
        model=[None, None],
        task_type=["1080p", None],
        create_s=[0.0, 0.0],
        complete_s=[30.0, None],
    )
    df["fetch_error"] = pd.array([None, "422 record is null."], dtype="string")
    assert fmt.labelled(df, "model")["model"].tolist() == ["upgrade task"]
    rows = fmt.task_rows(df, ["status", "model", "latency_s"])
    assert rows.to_numpy().tolist() == [["success", "upgrade task", "30"], ["unread"] * 3]

import streamlit as st

from dashboard import services

st.title("Datasets")
datasets = services.datasets_frame()
if datasets.empty:
    st.info("The store holds no dataset yet. Land the demo with `python -m monitors demo`, "
            "or a file of your own with `python -m monitors ingest --create`.")
    st.stop()
st.dataframe(datasets, hide_index=True, key="datasets.table")

choice = st.selectbox("Batches of", ["(all)", *datasets["dataset"]], key="datasets.pick")
batches = services.batches_frame(None if choice == "(all)" else choice)
quarantined = batches[batches["status"] == "quarantined"]
if not quarantined.empty:
    st.subheader(f"Quarantined ({len(quarantined)})")
    st.dataframe(quarantined[["dataset", "partition", "reason"]], hide_index=True,
                 key="datasets.quarantined")
st.subheader(f"Batches ({len(batches)})")
st.dataframe(batches, hide_index=True, key="datasets.batches")

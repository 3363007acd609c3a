"""Entry point: routes only (the pages live in dashboard/views)."""
import streamlit as st

st.set_page_config(page_title="Monitors", layout="wide")
st.navigation([
    st.Page("dashboard/views/datasets.py", title="Datasets", url_path="datasets", default=True),
]).run()

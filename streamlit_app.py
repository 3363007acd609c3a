"""Entry point: routes only (the pages live in dashboard/views)."""
import streamlit as st

from dashboard.faults import store_faults_shown

st.set_page_config(page_title="Monitors", layout="wide")
pages = st.navigation([
    st.Page("dashboard/views/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("dashboard/views/alerts.py", title="Alerts", url_path="alerts"),
    st.Page("dashboard/views/alert.py", title="Alert detail", url_path="alert"),
    st.Page("dashboard/views/datasets.py", title="Datasets", url_path="datasets"),
    st.Page("dashboard/views/model_outputs.py", title="Model outputs", url_path="model-outputs"),
    st.Page("dashboard/views/monitors.py", title="Monitors", url_path="monitors"),
    st.Page("dashboard/views/pipeline.py", title="Pipeline", url_path="pipeline"),
])
with store_faults_shown():  # a store that cannot be used is one line, on every page
    pages.run()

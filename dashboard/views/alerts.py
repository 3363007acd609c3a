import streamlit as st

st.title("alerts")
st.info("This page is being built.")

import streamlit as st

st.title("alert")
st.info("This page is being built.")

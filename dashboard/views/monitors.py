import streamlit as st

st.title("monitors")
st.info("This page is being built.")
